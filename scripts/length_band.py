#!/usr/bin/env python3
"""Learns the length band of src/check/length.rs from human translations (newstest2017 only).

For every line, x = 1/sqrt(source characters) and r = ln(English chars / Turkish chars), both
sides trimmed. Lines are sorted by source length and cut into buckets of equal size; in each
bucket the 1% and 99% quantiles of r are taken, and a line a + b*x is fitted (least squares)
through each set of quantiles. Short sources have noisy ratios, so b widens the band for them:
the band is  -LOW_A - LOW_B*x <= r <= HIGH_A + HIGH_B*x, and never narrower than the
quantiles of the bucket of longest lines (LOW_FLOOR, HIGH_FLOOR), so that the fitted lines do
not pinch the band shut on paragraphs longer than any tuning line.

    python3 scripts/length_band.py [/work/shared/eval/newstest2017]

prints the constants for length.rs and the share of the tuning lines outside the band. Python
standard library only.
"""

import math
import sys

QUANTILE = 0.01
BUCKET = 300


def fit(xs, ys):
    """Least-squares line y = a + b*x."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return my - b * mx, b


def main():
    stem = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/eval/newstest2017"
    with open(stem + ".tr", encoding="utf-8") as f:
        tr = f.read().split("\n")
    with open(stem + ".en", encoding="utf-8") as f:
        en = f.read().split("\n")
    lines = [
        (len(t.strip()), math.log(len(e.strip()) / len(t.strip())))
        for t, e in zip(tr, en)
        if t.strip() and e.strip()
    ]
    lines.sort()
    xs, lows, highs = [], [], []
    for i in range(0, len(lines) - BUCKET // 2, BUCKET):
        bucket = lines[i:i + BUCKET]
        rs = sorted(r for _, r in bucket)
        k = max(0, int(QUANTILE * len(rs)) - 1)
        median_len = bucket[len(bucket) // 2][0]
        xs.append(1 / math.sqrt(median_len))
        lows.append(rs[k])
        highs.append(rs[-1 - k])
        print(f"# bucket len~{median_len:4}: q{QUANTILE:.2f} {rs[k]:+.3f}  "
              f"q{1 - QUANTILE:.2f} {rs[-1 - k]:+.3f}")
    low_a, low_b = fit(xs, lows)
    high_a, high_b = fit(xs, highs)
    print(f"const LOW_A: f64 = {-low_a:.2f};")
    print(f"const LOW_B: f64 = {-low_b:.2f};")
    print(f"const HIGH_A: f64 = {high_a:.2f};")
    print(f"const HIGH_B: f64 = {high_b:.2f};")
    print(f"const LOW_FLOOR: f64 = {-lows[-1]:.2f};")
    print(f"const HIGH_FLOOR: f64 = {highs[-1]:.2f};")
    la, lb, ha, hb, lf, hf = (
        round(v, 2) for v in (-low_a, -low_b, high_a, high_b, -lows[-1], highs[-1])
    )
    below = sum(r < min(-la - lb / math.sqrt(n), -lf) for n, r in lines)
    above = sum(r > max(ha + hb / math.sqrt(n), hf) for n, r in lines)
    print(f"# {stem}: {len(lines)} lines, {below} below the band "
          f"({100 * below / len(lines):.1f}%), {above} above ({100 * above / len(lines):.1f}%)")


if __name__ == "__main__":
    main()
