// Fresh review S6: the setup screen accepts the login names the server accepts
// (outpost_domain::names): any script, '@'; not a leading '-', no spaces or hidden characters.
import { describe, expect, it } from "vitest";
import { validUserName } from "./auth";

describe("validUserName", () => {
  it("follows the server's login-name rule", () => {
    for (const ok of ["王伟", "ann@pd", "cmdr.li", "o_neil-2", "Zoë", "a".repeat(64)]) {
      expect(validUserName(ok), ok).toBe(true);
    }
    for (const bad of ["", "-rf", "ann lee", "x\u202Ey", "a\u200Bb", "a".repeat(65)]) {
      expect(validUserName(bad), JSON.stringify(bad)).toBe(false);
    }
  });
});
