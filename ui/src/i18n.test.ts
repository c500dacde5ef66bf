import { describe, expect, it } from "vitest";
import { DICTIONARIES, label, resolveLang, t } from "./i18n";
import { DISPOSITIONS, INCIDENT_STATUSES, INCIDENT_TYPES, PRIORITIES, UNIT_STATUSES } from "./domain";

const placeholders = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

describe("i18n", () => {
  it("has every key in both zh and en, none empty, with the same placeholders", () => {
    const en = DICTIONARIES.en;
    const zh = DICTIONARIES.zh;
    expect(Object.keys(zh).sort()).toEqual(Object.keys(en).sort());
    for (const key of Object.keys(en) as (keyof typeof en)[]) {
      expect(en[key].trim(), `en ${key}`).not.toBe("");
      expect(zh[key].trim(), `zh ${key}`).not.toBe("");
      expect(placeholders(zh[key]), `placeholders of ${key}`).toEqual(placeholders(en[key]));
    }
  });

  it("labels every enum value that crosses IPC, differently in each language", () => {
    for (const p of PRIORITIES) expect(label.priority("zh", p)).not.toBe(label.priority("en", p));
    for (const s of UNIT_STATUSES) expect(label.unitStatus("zh", s)).not.toBe(label.unitStatus("en", s));
    for (const s of INCIDENT_STATUSES) expect(label.incidentStatus("zh", s)).not.toBe(label.incidentStatus("en", s));
    for (const s of INCIDENT_TYPES) expect(label.incidentType("zh", s)).not.toBe(label.incidentType("en", s));
    for (const s of DISPOSITIONS) expect(label.disposition("zh", s)).not.toBe(label.disposition("en", s));
    expect(label.unitStatus("zh", "en_route")).toBe("赶赴中");
    expect(label.facilityKind("zh", "post")).toBe("警务站");
  });

  it("fills placeholders", () => {
    expect(t("en", "tl.unit_assigned", { callsign: "巡01" })).toBe("巡01 assigned");
    expect(t("zh", "age.m", { n: 3 })).toBe("3 分钟");
  });

  it("follows navigator.language when the setting is auto", () => {
    expect(resolveLang("auto", "zh-CN")).toBe("zh");
    expect(resolveLang("auto", "zh-Hans-CN")).toBe("zh");
    expect(resolveLang("auto", "en-US")).toBe("en");
    expect(resolveLang("auto", "de-DE")).toBe("en");
    expect(resolveLang("auto", undefined)).toBe("en");
    expect(resolveLang("zh_cn", "en-US")).toBe("zh");
    expect(resolveLang("en", "zh-CN")).toBe("en");
  });
});
