"""Agreement and timing table for benches/compare/run.sh.

    python3 report.py WORKDIR

Reads WORKDIR/times.tsv (job, tool, wall seconds, peak RSS kB, note) and the estimates each tool
wrote (cvsurvey: out_<job>/estimates.parquet; svy, R: <tool>_<job>.csv), checks that the
estimates agree, and prints wall time, peak memory and the ratios to cvsurvey.
"""

import sys
from pathlib import Path

import polars as pl

work = Path(sys.argv[1])
KEY = ["indicator", "domain_var", "domain_value"]


def load(tool, job):
    if tool == "cvsurvey":
        p = work / f"out_{job}" / "estimates.parquet"
        if not p.exists():
            return None
        d = pl.read_parquet(p)
        variance = "taylor" if job == "taylor" else "bootstrap"
        d = d.filter(pl.col("variance") == variance)
        # One row per interval method: the estimate and SE are the same on each.
        return d.select(KEY + ["estimate", "se"]).unique(KEY, keep="first", maintain_order=True)
    p = work / f"{tool}_{job}.csv"
    if not p.exists():
        return None
    return pl.read_csv(p, schema_overrides={"domain_value": pl.Utf8}).select(KEY + ["estimate", "se"])


def agreement(a, b, what):
    if a is None or b is None:
        return None
    j = a.join(b, on=KEY, how="full", suffix="_b", coalesce=True)
    missing = j.filter(pl.col("estimate").is_null() | pl.col("estimate_b").is_null()).height
    rel = lambda x, y: ((pl.col(x) - pl.col(y)).abs() / pl.col(y).abs().clip(1e-300))
    m = j.select(rel("estimate", "estimate_b").max().alias("e"), rel("se", "se_b").max().alias("s"))
    e, s = m["e"][0], m["s"][0]
    print(f"  {what}: {j.height} rows, {missing} unmatched, max relative difference "
          f"estimate {e:.2e}, se {s:.2e}")
    return e, s, missing


times = pl.read_csv(work / "times.tsv", separator="\t", has_header=False,
                    new_columns=["job", "tool", "wall_s", "rss_kb", "note"],
                    schema_overrides={"note": pl.Utf8, "wall_s": pl.Float64, "rss_kb": pl.Float64})
ok = True
print("\nAgreement")
for job in ["taylor", "replicate"]:
    c, r, s = load("cvsurvey", job), load("r", job), load("svy", job)
    if job == "taylor":
        res = agreement(c, r, "taylor   cvsurvey vs R  ")
        if res is not None:
            good = res[0] <= 1e-6 and res[1] <= 1e-6 and res[2] == 0
            ok &= good
            print(f"    {'OK' if good else 'FAIL'}: cvsurvey equals R to 1e-6 (estimates and SEs)")
        agreement(s, r, "taylor   svy vs R       ")
    else:
        print("  replicate: point estimates after raking should agree; bootstrap SEs differ by "
              "design (R Canty-Davison vs Rao-Wu, different random numbers)")
        agreement(c, r, "replicate cvsurvey vs R ")
        agreement(s, r, "replicate svy vs R      ")

print("\nWall time and peak memory (/usr/bin/time -v)")
print(f"  {'job':<10} {'tool':<10} {'wall s':>9} {'peak MB':>9} {'× cvsurvey':>11}  note")
for job in times["job"].unique(maintain_order=True):
    t = times.filter(pl.col("job") == job)
    base = t.filter(pl.col("tool") == "cvsurvey")["wall_s"]
    base = base[0] if len(base) and base[0] == base[0] else None
    for row in t.iter_rows(named=True):
        ratio = f"{row['wall_s'] / base:.1f}" if base and row["wall_s"] == row["wall_s"] else ""
        mb = row["rss_kb"] / 1024 if row["rss_kb"] == row["rss_kb"] else float("nan")
        print(f"  {job:<10} {row['tool']:<10} {row['wall_s']:>9.2f} {mb:>9.0f} {ratio:>11}  {row['note'] or ''}")
sys.exit(0 if ok else 1)
