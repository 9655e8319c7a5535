"""Write the fuzzing seed corpus (fuzz/seeds/<target>/) from the shipped fixtures.

Run from the repository root:  python3 fuzz/make_seeds.py
Needs: pip install pyreadstat pandas pyarrow   (written with pyreadstat 1.3.7, pandas 3.1.1,
pyarrow 26.0.1).

Seeds are small on purpose (a few rows of the demo survey, each configuration file, each
expression of the shipped questionnaire) so that mutations reach the parsers' corners quickly.
"""

import pathlib
import re
import shutil
import tomllib

import pandas as pd
import pyreadstat

ROOT = pathlib.Path(__file__).resolve().parents[1]
SEEDS = ROOT / "fuzz" / "seeds"


def out(target, name, data):
    d = SEEDS / target
    d.mkdir(parents=True, exist_ok=True)
    p = d / name
    if isinstance(data, str):
        data = data.encode()
    p.write_bytes(data)
    return p


def demo_rows(n):
    return pd.read_csv(ROOT / "fixtures" / "demo" / "data.csv",
                       dtype={"region": str, "stratum": str}, nrows=n)


def main():
    if SEEDS.exists():
        shutil.rmtree(SEEDS)
    lines = (ROOT / "fixtures" / "demo" / "data.csv").read_text().splitlines()
    header = lines[0]
    out("csv_ingest", "demo_6_rows.csv", "\n".join(lines[:7]) + "\n")
    out("csv_ingest", "demo_header_only.csv", header + "\n")
    out("csv_ingest", "demo_crlf_quoted.csv",
        "\r\n".join('"' + l.replace(",", '","') + '"' for l in lines[:4]) + "\r\n")
    bad = lines[1].split(",")
    bad[5] = "-3"        # negative design weight
    bad[8] = "7"         # sex code not in the questionnaire
    out("csv_ingest", "demo_bad_values.csv", "\n".join([header, ",".join(bad), lines[2]]) + "\n")
    out("csv_ingest", "demo_duplicate_id.csv", "\n".join([header, lines[1], lines[1]]) + "\n")

    df = demo_rows(6)
    (SEEDS / "parquet_ingest").mkdir(parents=True, exist_ok=True)
    df.to_parquet(SEEDS / "parquet_ingest" / "demo_6_rows.parquet", index=False,
                  compression=None)
    df.head(2).to_parquet(SEEDS / "parquet_ingest" / "demo_2_rows_snappy.parquet", index=False,
                          compression="snappy")

    for c in df.columns:
        if df[c].dtype.kind in "if":
            df[c] = df[c].astype("float64")
    (SEEDS / "sav_ingest").mkdir(parents=True, exist_ok=True)
    (SEEDS / "dta_ingest").mkdir(parents=True, exist_ok=True)
    small = df.head(3)
    vl = {"sex": {1: "Male", 2: "Female"}, "bribe_police": {1: "Yes", 2: "No", 8: "Don't know"}}
    miss = {"bribe_police": [8, 9]}
    pyreadstat.write_sav(small, SEEDS / "sav_ingest" / "demo_3_rows.sav",
                         variable_value_labels=vl, missing_ranges=miss)
    pyreadstat.write_sav(small, SEEDS / "sav_ingest" / "demo_3_rows_bytecode.sav",
                         variable_value_labels=vl, missing_ranges=miss, row_compress=True)
    pyreadstat.write_sav(small, SEEDS / "sav_ingest" / "demo_3_rows.zsav",
                         variable_value_labels=vl, missing_ranges=miss, compress=True)
    for name in ["small.sav", "small_plain.sav", "small.zsav", "draft_strmiss.sav",
                 "draft_ranges.sav"]:
        shutil.copy(ROOT / "fixtures" / "statfiles" / name, SEEDS / "sav_ingest" / name)
    (SEEDS / "por_ingest").mkdir(parents=True, exist_ok=True)
    # Portable files hold names of at most 8 characters.
    short = small.rename(columns={c: f"V{i + 1}" for i, c in enumerate(small.columns)})
    pyreadstat.write_por(short, SEEDS / "por_ingest" / "demo_3_rows.por")
    shutil.copy(ROOT / "fixtures" / "statfiles" / "small.por", SEEDS / "por_ingest" / "small.por")
    pyreadstat.write_dta(small, SEEDS / "dta_ingest" / "demo_3_rows_v118.dta",
                         variable_value_labels=vl, version=14)
    pyreadstat.write_dta(small, SEEDS / "dta_ingest" / "demo_3_rows_v114.dta",
                         variable_value_labels=vl, version=10)
    for name in ["small_v113.dta", "small_v114.dta", "small_extmiss.dta", "draft_v113.dta",
                 "draft_extlabels.dta"]:
        shutil.copy(ROOT / "fixtures" / "statfiles" / name, SEEDS / "dta_ingest" / name)

    q = (ROOT / "questionnaires" / "cvs-core.toml").read_text()
    out("questionnaire", "cvs-core.toml", q)
    out("questionnaire", "api.toml", (ROOT / "fixtures" / "api" / "api.toml").read_text())
    parsed = tomllib.loads(q)
    exprs = set()
    for v in parsed.get("variables", []):
        for key in ("asked_if", "valid_if"):
            if key in v:
                exprs.add(v[key])
    for d in parsed.get("derived", []):
        if "expr" in d:
            exprs.add(d["expr"])
    for i in parsed.get("indicators", []):
        for key in ("value", "universe", "numerator", "denominator"):
            if key in i:
                exprs.add(i[key])
    # The expression target knows the variables a, b (codes 1, 2; missing 8, 9), flag and t:
    # the questionnaire's variable names become b, so the seeds type-check and evaluate.
    words = {"and", "or", "not", "in", "true", "false"}
    for k, e in enumerate(sorted(exprs)):
        renamed = re.sub(r"\b([A-Za-z_][A-Za-z0-9_]*)\b(?!\s*\()",
                         lambda m: m.group(1) if m.group(1) in words else "b", e)
        out("expression", f"cvs_core_{k:02}.txt", renamed)
    for k, e in enumerate([
        "a > 0 and not missing(b)", "b in (1, 2) or flag", "t == \"R01\" and a / 2 >= -1.5",
        "if(flag, a, b) + 1", "(a + b) * 3 - -a", "t != \"=x\"", "a ** 2 ** 3", "1e308 * 10",
    ]):
        out("expression", f"synthetic_{k:02}.txt", e)

    for p in sorted(ROOT.glob("fixtures/**/*.toml")):
        if p.name not in ("api.toml",):
            out("pipeline_config", f"{p.parent.name}_{p.name}", p.read_text())
    for p in [ROOT / "fixtures/demo/margins.csv", ROOT / "fixtures/demo/poststrata.csv",
              *sorted(ROOT.glob("fixtures/weighting/*.csv"))]:
        text = p.read_text()
        if "total" in text.splitlines()[0]:
            out("margins", p.name, text)


if __name__ == "__main__":
    main()
