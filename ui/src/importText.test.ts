import { describe, expect, it } from "vitest";
import { decodeImportBytes } from "./importText";

const ascii = (s: string) => [...s].map((c) => c.charCodeAt(0));
/** "警务站" in GBK (checked with Python: "警务站".encode("gbk")). */
const GBK_JINGWUZHAN = [0xbe, 0xaf, 0xce, 0xf1, 0xd5, 0xbe];

describe("decodeImportBytes", () => {
  it("reads UTF-8 as UTF-8 and drops a UTF-8 BOM", () => {
    const utf8 = new TextEncoder().encode("id,name_zh\np1,警务站\n");
    expect(decodeImportBytes(utf8)).toEqual({ text: "id,name_zh\np1,警务站\n", encoding: "utf-8" });
    const bom = new Uint8Array([0xef, 0xbb, 0xbf, ...utf8]);
    expect(decodeImportBytes(bom.buffer)).toEqual({ text: "id,name_zh\np1,警务站\n", encoding: "utf-8" });
    expect(decodeImportBytes(new Uint8Array([]))).toEqual({ text: "", encoding: "utf-8" });
  });

  it("reads GBK bytes (Excel on Chinese Windows) as GB18030", () => {
    const bytes = new Uint8Array([...ascii("id,kind,name_zh\np1,post,"), ...GBK_JINGWUZHAN, ...ascii("\n")]);
    const d = decodeImportBytes(bytes);
    expect(d.encoding).toBe("gb18030");
    expect(d.text).toBe("id,kind,name_zh\np1,post,警务站\n");
    expect(d.text).not.toContain("\ufffd");
    // 派出所 (c5 c9 b3 f6 cb f9) as a kind cell.
    expect(decodeImportBytes(new Uint8Array([0xc5, 0xc9, 0xb3, 0xf6, 0xcb, 0xf9]))).toEqual({ text: "派出所", encoding: "gb18030" });
  });

  it("bytes that are neither become U+FFFD for the backend to refuse with the line", () => {
    // 0xFF is no lead byte in UTF-8 or GB18030.
    const d = decodeImportBytes(new Uint8Array([...ascii("id\n"), 0xff, ...ascii("x\n")]));
    expect(d).toEqual({ text: "id\n\ufffdx\n", encoding: "utf-8-lossy" });
  });
});
