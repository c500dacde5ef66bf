// The text of a chosen import file (issue 5, fresh-user finding I3): UTF-8 when the bytes
// are valid UTF-8, else GB18030 (a superset of GBK, what Excel writes for "CSV" on Chinese
// Windows). The backend refuses text with U+FFFD (crates/outpost-app/src/import.rs), so a
// file that is neither still reaches it as lossy UTF-8 and gets that problem with its line.

/** The encoding the bytes were read as. `utf-8-lossy`: neither decoded cleanly. */
export type ImportEncoding = "utf-8" | "gb18030" | "utf-8-lossy";

/** A file's text and how it was decoded. */
export interface DecodedText {
  text: string;
  encoding: ImportEncoding;
}

/**
 * Decodes a file's bytes: strict UTF-8 first (a leading UTF-8 BOM is dropped), then strict
 * GB18030 (WHATWG Encoding Standard; browsers and WebKitGTK have it), then UTF-8 with
 * U+FFFD for the bad bytes. Pure; never throws.
 */
export function decodeImportBytes(bytes: ArrayBuffer | Uint8Array): DecodedText {
  try {
    return { text: new TextDecoder("utf-8", { fatal: true }).decode(bytes), encoding: "utf-8" };
  } catch {
    // Not UTF-8: try GBK/GB18030 below.
  }
  try {
    return { text: new TextDecoder("gb18030", { fatal: true }).decode(bytes), encoding: "gb18030" };
  } catch {
    // Not GB18030 either (or the runtime lacks it): the backend names the line.
  }
  return { text: new TextDecoder("utf-8").decode(bytes), encoding: "utf-8-lossy" };
}
