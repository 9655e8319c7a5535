"""The comparison job in svy (PyPI `svy`, Rust engine): 11 cvs-core indicators by sex, age
group, region and urban on the respondents of a `cvsurvey synth` file (Parquet, read with
polars through svy.read_parquet).

    python3 job_svy.py taylor    DATA.parquet MARGINS.csv OUT.csv
    python3 job_svy.py replicate DATA.parquet MARGINS.csv OUT.csv [REPLICATES]

taylor:    Design(stratum, psu, wgt) (PSUs nested in strata), estimation.mean(drop_nulls=True)
           overall and by= each domain: Taylor linearization.
replicate: create_bs_wgts(n_reps=R, Rao-Wu), rake() on sex, age_group, region, urban (replicates
           raked too), then estimation.mean(method="replication").
Writes indicator,domain_var,domain_value,estimate,se.
"""

import sys

import polars as pl
import svy

job, data_path, margins_path, out_path = sys.argv[1:5]
replicates = int(sys.argv[5]) if len(sys.argv) > 5 else 200

TYPES = ["police", "courts", "health", "education", "tax", "customs", "land", "utilities"]
DOMAINS = ["sex", "age_group", "region", "urban"]
cols = (
    ["stratum", "psu", "design_weight", "responded"] + DOMAINS
    + [f"{p}_{t}" for p in ("contact", "bribe", "nbribes") for t in TYPES]
    + ["bribe_reported", "theft_12m", "robbery_12m", "assault_12m", "assault_n",
       "assault_reported", "safe_dark"]
)
df = svy.read_parquet(data_path, columns=cols).filter(pl.col("responded") == 1)
c = pl.col


def kleene_any(names):
    """any(x == 1) with missing-aware rules: 8/9 unknown, blank = not asked."""
    yes = pl.any_horizontal([(c(n) == 1).fill_null(False) for n in names])
    dk = pl.any_horizontal([c(n).is_in([8, 9]).fill_null(False) for n in names])
    asked = pl.any_horizontal([c(n).is_not_null() for n in names])
    return pl.when(yes).then(True).when(dk).then(None).when(asked).then(False).otherwise(None)


def yn(universe, value):
    return pl.when(universe.fill_null(False)).then(value.cast(pl.Float64)).otherwise(None)


df = df.with_columns(
    kleene_any([f"contact_{t}" for t in TYPES]).alias("any_contact"),
    kleene_any([f"bribe_{t}" for t in TYPES]).alias("paid"),
    pl.sum_horizontal(
        [pl.when(c(f"bribe_{t}") == 1).then(c(f"nbribes_{t}")).otherwise(0) for t in TYPES],
        ignore_nulls=False,
    ).alias("n_bribes"),
)
a, r = c("assault_12m"), c("robbery_12m")
df = df.with_columns(
    yn(c("any_contact"), c("paid")).alias("I01"),
    yn((c("contact_police") == 1) & c("bribe_police").is_in([1, 2]), c("bribe_police") == 1).alias("I02"),
    yn((c("contact_land") == 1) & c("bribe_land").is_in([1, 2]), c("bribe_land") == 1).alias("I03"),
    yn(c("paid"), c("n_bribes")).alias("I04"),
    yn(c("paid").fill_null(False) & c("bribe_reported").is_in([1, 2]), c("bribe_reported") == 1).alias("I05"),
    yn(a.is_in([1, 2]), a == 1).alias("I06"),
    yn(c("theft_12m").is_in([1, 2]), c("theft_12m") == 1).alias("I07"),
    pl.when((a == 1).fill_null(False) | (r == 1).fill_null(False)).then(1.0)
    .when((a == 2).fill_null(False) & (r == 2).fill_null(False)).then(0.0)
    .otherwise(None).alias("I08"),
    yn((a == 1) & c("assault_reported").is_in([1, 2]), c("assault_reported") == 1).alias("I09"),
    yn(c("safe_dark").is_in([1, 2, 3, 4, 5]), c("safe_dark").is_in([1, 2])).alias("I10"),
    yn(a.is_in([1, 2]), pl.when(a == 1).then(pl.when(c("assault_n") > 5).then(5).otherwise(c("assault_n"))).otherwise(0)).alias("I11"),
)
IDS = ["bribery_prevalence", "bribery_prevalence_police", "bribery_prevalence_land",
       "bribe_frequency", "bribery_reporting_rate", "assault_prevalence", "theft_prevalence",
       "violence_prevalence", "assault_reporting_rate", "feel_safe_dark",
       "assault_incidence_per_1000"]
MULT = [1.0] * 10 + [1000.0]

sample = svy.Sample(df, svy.Design(stratum="stratum", psu="psu", wgt="design_weight"))
method = "taylor"
if job == "replicate":
    m = pl.read_csv(margins_path, schema_overrides={"category": pl.Utf8})
    controls = {}
    for v in DOMAINS:
        rows = m.filter(c("variable") == v)
        numeric = df.schema[v].is_integer()
        controls[v] = {
            (int(k) if numeric else k): float(t)
            for k, t in zip(rows["category"], rows["total"])
        }
    sample = sample.weighting.create_bs_wgts(n_reps=replicates, rstate=42)
    sample = sample.weighting.rake(controls=controls, tol=1e-7, max_iter=100)
    method = "replication"

out = []
for k, ident in enumerate(IDS):
    y = f"I{k + 1:02d}"
    t = sample.estimation.mean(y, method=method, drop_nulls=True).to_polars()
    out.append((ident, "_T", "_T", t["est"][0] * MULT[k], t["se"][0] * MULT[k]))
    for v in DOMAINS:
        b = sample.estimation.mean(y, by=v, method=method, drop_nulls=True).to_polars()
        for row in b.iter_rows(named=True):
            out.append((ident, v, str(row[v]), row["est"] * MULT[k], row["se"] * MULT[k]))
pl.DataFrame(out, schema=["indicator", "domain_var", "domain_value", "estimate", "se"],
             orient="row").write_csv(out_path)
