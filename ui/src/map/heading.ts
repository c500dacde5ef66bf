// The heading arrow is drawn at runtime (no extra asset): a white chevron used as an SDF
// image so `icon-color` can paint it in the unit's status colour.

/** RGBA pixels of a 32×32 arrow pointing north, centred (the unit dot sits in its middle). */
export function headingArrowImage(size = 32): { width: number; height: number; data: Uint8Array } {
  const data = new Uint8Array(size * size * 4);
  const c = size / 2;
  // Triangle tip at the top edge, base just above the unit dot (radius ~8 px at 1x).
  const tip = { x: c, y: 1 };
  const left = { x: c - 6, y: c - 7 };
  const right = { x: c + 6, y: c - 7 };
  const sign = (p: { x: number; y: number }, a: typeof p, b: typeof p) => (p.x - b.x) * (a.y - b.y) - (a.x - b.x) * (p.y - b.y);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const p = { x: x + 0.5, y: y + 0.5 };
      const d1 = sign(p, tip, left);
      const d2 = sign(p, left, right);
      const d3 = sign(p, right, tip);
      const neg = d1 < 0 || d2 < 0 || d3 < 0;
      const pos = d1 > 0 || d2 > 0 || d3 > 0;
      if (!(neg && pos)) {
        const i = (y * size + x) * 4;
        data[i] = 255;
        data[i + 1] = 255;
        data[i + 2] = 255;
        data[i + 3] = 255;
      }
    }
  }
  return { width: size, height: size, data };
}
