#!/usr/bin/env bash
# The same survey job in cvsurvey, svy (PyPI) and R survey, side by side.
#
#   benches/compare/run.sh                 # 1M rows, 40 regions x urban/rural, ~3,000 PSUs
#   ROWS=100000 benches/compare/run.sh     # smaller
#
# Job "taylor": the 11 cvs-core indicators overall and by sex, age group, region and urban, on the
# respondents with design weights, Taylor linearization (R: svydesign + svymean/svyby).
# Job "replicate": raking on sex, age group, region and urban, then 200 bootstrap replicates, each
# raked again, and the same estimates with replicate variance.
#
# It installs nothing. Missing peers are skipped with the command that installs them:
#   svy:      pip install svy==0.35.0
#   R survey: apt-get install r-base-core r-cran-survey r-cran-data.table
#   time:     apt-get install time
# R runs the replicate job with R_REPLICATES (default 10) replicates, and the 200-replicate time is
# extrapolated linearly from runs with R_REPLICATES/2 and R_REPLICATES replicates (said in the
# table); R_REPLICATES=200 measures R's 200 replicates directly (about 40 minutes at 1M rows).
# cvsurvey and svy are run RUNS times (default 3) and the median wall time is reported (with the
# largest peak memory); R, whose runs take minutes, once.
# Job "contrasts" (cvsurvey only, JOBS=contrasts): the Taylor job again with 10 [[contrast]] x
# 11 indicators (no `within`), and with `within` on 4 of them (616 contrast rows), against the
# same job without contrasts.
# Job "analyses" (cvsurvey only, JOBS=analyses): the Taylor job with 4 distributions (5 categories
# each), 2 quantile indicators (3 probabilities) and 2 crossed domains added, against the same job
# without them.
# Job "nso" (cvsurvey only, JOBS=nso): the job of issue 17 as a national statistics office runs
# it, on its own file (--psu-size 100: about 10,000 PSUs of 100 rows at 1M rows, 80 strata, CSV
# written with --format csv): CSV input with design weights; CSV with nonresponse classes
# (stratum) and raking; the same with 100 bootstrap replicates, each redoing the nonresponse
# adjustment and the raking (nonresponse = "recompute", the default); and with
# nonresponse = "fixed". svy and R are not run on it (their closest equivalents are the taylor
# and replicate jobs above, minutes each).
# Environment: ROWS (1000000), SEED (7), WORK (target/compare), CVSURVEY (the binary, default
# target/release/cvsurvey), JOBS ("taylor replicate"), R_REPLICATES (10), RUNS (3), SKIP_R=1.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE="$ROOT/benches/compare"
ROWS=${ROWS:-1000000}
SEED=${SEED:-7}
REGIONS=40
REPLICATES=200
R_REPLICATES=${R_REPLICATES:-10}
RUNS=${RUNS:-3}
JOBS=${JOBS:-"taylor replicate"}
WORK=$(realpath -m "${WORK:-$ROOT/target/compare}")
CVSURVEY=${CVSURVEY:-${CARGO_TARGET_DIR:-$ROOT/target}/release/cvsurvey}
mkdir -p "$WORK"
TIMES="$WORK/times.tsv"
: > "$TIMES"

[ -x /usr/bin/time ] || { echo "GNU time is missing: apt-get install time" >&2; exit 2; }
[ -x "$CVSURVEY" ] || { echo "cvsurvey binary not found at $CVSURVEY: cargo build --release (or set CVSURVEY)" >&2; exit 2; }
have_svy=1; python3 -c "import svy, polars" 2>/dev/null || { have_svy=0; echo "svy is missing: pip install svy==0.35.0 (skipping svy)"; }
have_r=1; Rscript -e 'suppressMessages({library(survey); library(data.table)})' >/dev/null 2>&1 || { have_r=0; echo "R survey is missing: apt-get install r-base-core r-cran-survey r-cran-data.table (skipping R)"; }
[ "${SKIP_R:-0}" = 1 ] && have_r=0
python3 -c "import polars" 2>/dev/null || { echo "report needs polars: pip install polars" >&2; exit 2; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/{print $2}') GB; $(date -u +%Y-%m-%d)"

# Data: generated once per rows/seed.
STEM="$WORK/data-n$ROWS-s$SEED"
if [ ! -f "$STEM.parquet" ] || [ ! -f "$STEM.csv" ]; then
  echo "generating $ROWS rows (seed $SEED, $REGIONS regions)"
  "$CVSURVEY" synth --questionnaire "$ROOT/questionnaires/cvs-core.toml" --rows "$ROWS" \
    --regions $REGIONS --seed "$SEED" --out "$STEM.parquet" --margins "$STEM.margins.csv" \
    --questionnaire-out "$STEM.questionnaire.toml" >/dev/null
  "$CVSURVEY" synth --questionnaire "$ROOT/questionnaires/cvs-core.toml" --rows "$ROWS" \
    --regions $REGIONS --seed "$SEED" --out "$STEM.csv" \
    --questionnaire-out "$STEM.questionnaire.toml" >/dev/null
fi

# measure JOB TOOL NOTE CMD...: wall seconds and peak RSS of one run into times.tsv.
measure() { measure_runs 1 "$@"; }

# measure_runs N JOB TOOL NOTE CMD...: N runs; the median wall seconds and the largest peak RSS.
measure_runs() {
  local runs=$1 job=$2 tool=$3 note=$4; shift 4
  local log="$WORK/$tool-$job.log" walls=() rss_max=0
  for ((k = 1; k <= runs; k++)); do
    if ! /usr/bin/time -v -o "$log.time" "$@" >"$log" 2>&1; then
      printf '%s\t%s\tNaN\tNaN\t%s\n' "$job" "$tool" "failed: $(grep -m1 -i error "$log" | cut -c1-160)" >>"$TIMES"
      echo "  $job/$tool: failed, see $log"
      return 1
    fi
    walls+=("$(awk -F': ' '/Elapsed \(wall clock\)/{n=split($2,p,":"); s=0; for(i=1;i<=n;i++) s=s*60+p[i]; print s}' "$log.time")")
    local rss
    rss=$(awk -F': ' '/Maximum resident set size/{print $2}' "$log.time")
    ((rss > rss_max)) && rss_max=$rss
  done
  local wall
  wall=$(printf '%s\n' "${walls[@]}" | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')
  [ "$runs" -gt 1 ] && note="${note:+$note; }median of $runs runs (${walls[*]} s)"
  printf '%s\t%s\t%s\t%s\t%s\n' "$job" "$tool" "$wall" "$rss_max" "$note" >>"$TIMES"
  echo "  $job/$tool: ${wall}s, $((rss_max / 1024)) MB"
}

# The 11 one-number cvs-core indicators the peers' job scripts estimate, by four domains; the
# "analyses" job adds distributions, quantiles and crosses to them.
ONE_NUMBER='"bribery_prevalence", "bribery_prevalence_police", "bribery_prevalence_land", "bribe_frequency", "bribery_reporting_rate", "assault_prevalence", "theft_prevalence", "violence_prevalence", "assault_reporting_rate", "feel_safe_dark", "assault_incidence_per_1000"'
INDICATORS=$ONE_NUMBER
DOMAINS='"sex", "age_group", "region", "urban"'

config() { # NAME WEIGHTING_AND_VARIANCE (data: DATA, default the Parquet file)
  cat >"$WORK/$1.toml" <<TOML
questionnaire = "$STEM.questionnaire.toml"
[data]
path = "${DATA:-$STEM.parquet}"
id = "resp_id"
response = "responded"
[design]
strata = "stratum"
psu = "psu"
weight = "design_weight"
nest = true
$2
[estimation]
indicators = [$INDICATORS]
domains = [$DOMAINS]
ci = ["logit"]
[output]
dir = "$WORK/out_$1"
TOML
  echo "$WORK/$1.toml"
}

# Floor: read the same Parquet columns into Arrow, nothing else (in-process time, best of 3).
COLUMNS=$(head -1 "$STEM.csv")
BARE=$(cd "$ROOT" && cargo bench -q --bench bare_read -- "$STEM.parquet" "$COLUMNS" 2>/dev/null | awk '/bare_read_seconds/{print $2}')
echo "bare read of the Parquet columns: ${BARE:-n/a} s"
[ -n "$BARE" ] && printf 'floor\tbare_read\t%s\tNaN\t%s\n' "$BARE" "parquet crate, all columns, in-process" >>"$TIMES"

# The 10 contrasts of the "contrasts" job; WITHIN=1 adds `within` to four of them.
contrast_tables() {
  local w=${1:-0}
  add() { printf '[[contrast]]\nname = "%s"\nindicators = ["*"]\nby = "%s"\ncompare = ["%s", "%s"]\nwithin = [%s]\n' "$1" "$2" "$3" "$4" "$([ "$w" = 1 ] && echo "$5")"; }
  add gap sex 2 1 '"region"'
  add urban_rural urban 1 2 '"sex"'
  add young_old age_group 1 4 ''
  add age12 age_group 1 2 ''
  add age13 age_group 1 3 ''
  add age23 age_group 2 3 ''
  add age24 age_group 2 4 ''
  add age34 age_group 3 4 '"sex"'
  add r1r2 region R01 R02 ''
  add r3r4 region R03 R04 '"urban"'
}

for job in $JOBS; do
  echo "job $job"
  if [ "$job" = nso ]; then
    # 100 rows per PSU, CSV; same questionnaire copy (40 regions) as the other jobs.
    NSO="$WORK/data-n$ROWS-s$SEED-psu100"
    if [ ! -f "$NSO.csv" ]; then
      echo "generating $ROWS rows, 100 per PSU (seed $SEED, $REGIONS regions)"
      "$CVSURVEY" synth --questionnaire "$ROOT/questionnaires/cvs-core.toml" --rows "$ROWS" \
        --regions $REGIONS --psu-size 100 --seed "$SEED" --format csv --out "$NSO.csv" \
        --margins "$NSO.margins.csv" --questionnaire-out "$STEM.questionnaire.toml" >/dev/null
    fi
    nr_raked="[[weighting]]
name = \"nr_raked\"
nonresponse = { classes = [\"stratum\"] }
calibration = { method = \"raking\", margins = \"$NSO.margins.csv\" }"
    cfg=$(DATA="$NSO.csv" config nso_csv_taylor $'[[weighting]]\nname = "design"\n[variance]\nmethod = "taylor"')
    measure_runs "$RUNS" nso_csv_taylor cvsurvey "CSV, design weights" "$CVSURVEY" run --timings "$cfg" || true
    cfg=$(DATA="$NSO.csv" config nso_csv_nr_raked "$nr_raked"$'\n[variance]\nmethod = "taylor"')
    measure_runs "$RUNS" nso_csv_nr_raked cvsurvey "CSV, nonresponse classes + raking" "$CVSURVEY" run --timings "$cfg" || true
    cfg=$(DATA="$NSO.csv" config nso_csv_nr_bootstrap "$nr_raked"$'\n[variance]\nmethod = ["taylor", "bootstrap"]\nreplicates = 100')
    measure_runs "$RUNS" nso_csv_nr_bootstrap cvsurvey "the same, 100 bootstrap replicates, nonresponse recomputed" "$CVSURVEY" run --timings "$cfg" || true
    cfg=$(DATA="$NSO.csv" config nso_csv_nr_bootstrap_fixed "$nr_raked"$'\n[variance]\nmethod = ["taylor", "bootstrap"]\nreplicates = 100\nnonresponse = "fixed"')
    measure_runs "$RUNS" nso_csv_nr_bootstrap_fixed cvsurvey "the same, nonresponse fixed" "$CVSURVEY" run --timings "$cfg" || true
  elif [ "$job" = contrasts ]; then
    base=$'[[weighting]]\nname = "design"\n[variance]\nmethod = "taylor"'
    cfg=$(config taylor "$base")
    measure_runs "$RUNS" contrasts_none cvsurvey "no contrasts" "$CVSURVEY" run "$cfg" || true
    cfg=$(config contrasts_plain "$base"); contrast_tables 0 >>"$cfg"
    measure_runs "$RUNS" contrasts_plain cvsurvey "10 contrasts x 11 indicators" "$CVSURVEY" run "$cfg" || true
    cfg=$(config contrasts_within "$base"); contrast_tables 1 >>"$cfg"
    measure_runs "$RUNS" contrasts_within cvsurvey "the same, 4 with within" "$CVSURVEY" run "$cfg" || true
  elif [ "$job" = analyses ]; then
    # 4 distributions of 5 categories, 2 quantile indicators of 3 probabilities, 2 crosses.
    cat "$STEM.questionnaire.toml" - >"$WORK/analyses.questionnaire.toml" <<'TOML'

[[indicators]]
id = "safe_dark_women"
kind = "distribution"
value = "safe_dark"
universe = "sex == 2"

[[indicators]]
id = "safe_dark_men"
kind = "distribution"
value = "safe_dark"
universe = "sex == 1"

[[indicators]]
id = "safe_dark_urban"
kind = "distribution"
value = "safe_dark"
universe = "urban == 1"

[[indicators]]
id = "age_quartiles"
kind = "quantile"
value = "age"
probs = [0.25, 0.5, 0.75]
TOML
    base=$'[[weighting]]\nname = "design"\n[variance]\nmethod = "taylor"'
    cfg=$(config analyses_none "$base")
    measure_runs "$RUNS" analyses_none cvsurvey "11 indicators x 4 domains" "$CVSURVEY" run "$cfg" || true
    INDICATORS="$ONE_NUMBER, \"safe_dark_distribution\", \"safe_dark_women\", \"safe_dark_men\", \"safe_dark_urban\", \"median_bribe_amount\", \"age_quartiles\""
    DOMAINS="$DOMAINS, [\"sex\", \"age_group\"], [\"region\", \"urban\"]"
    cfg=$(config analyses "$base")
    sed -i "s#^questionnaire = .*#questionnaire = \"$WORK/analyses.questionnaire.toml\"#" "$cfg"
    measure_runs "$RUNS" analyses cvsurvey "+ 4 distributions, 2 quantiles, 2 crosses" "$CVSURVEY" run "$cfg" || true
    INDICATORS=$ONE_NUMBER
    DOMAINS='"sex", "age_group", "region", "urban"'
  elif [ "$job" = taylor ]; then
    cfg=$(config taylor $'[[weighting]]\nname = "design"\n[variance]\nmethod = "taylor"')
    measure_runs "$RUNS" taylor cvsurvey "" "$CVSURVEY" run --timings "$cfg" || true
    [ $have_svy = 1 ] && { measure_runs "$RUNS" taylor svy "" python3 "$HERE/job_svy.py" taylor "$STEM.parquet" "$STEM.margins.csv" "$WORK/svy_taylor.csv" || true; }
    [ $have_r = 1 ] && { measure taylor r "" Rscript "$HERE/job_r.R" taylor "$STEM.csv" "$STEM.margins.csv" "$WORK/r_taylor.csv" || true; }
  else
    cfg=$(config replicate "[[weighting]]
name = \"raked\"
calibration = { method = \"raking\", margins = \"$STEM.margins.csv\" }
[variance]
method = [\"taylor\", \"bootstrap\"]
replicates = $REPLICATES")
    if ! measure_runs "$RUNS" replicate cvsurvey "" "$CVSURVEY" run --timings "$cfg"; then
      echo "  cvsurvey cannot run the replicate job yet: $(head -c 300 "$WORK/cvsurvey-replicate.log")"
    fi
    [ $have_svy = 1 ] && { measure_runs "$RUNS" replicate svy "$REPLICATES replicates" python3 "$HERE/job_svy.py" replicate "$STEM.parquet" "$STEM.margins.csv" "$WORK/svy_replicate.csv" $REPLICATES || true; }
    if [ $have_r = 1 ] && [ "$R_REPLICATES" = "$REPLICATES" ]; then
      measure replicate r "$REPLICATES replicates, measured" Rscript "$HERE/job_r.R" replicate "$STEM.csv" "$STEM.margins.csv" "$WORK/r_replicate.csv" "$R_REPLICATES" || true
    elif [ $have_r = 1 ]; then
      half=$((R_REPLICATES / 2))
      measure replicate_r_half r "$half replicates" Rscript "$HERE/job_r.R" replicate "$STEM.csv" "$STEM.margins.csv" "$WORK/r_replicate_half.csv" $half || true
      measure replicate_r_full r "$R_REPLICATES replicates" Rscript "$HERE/job_r.R" replicate "$STEM.csv" "$STEM.margins.csv" "$WORK/r_replicate.csv" "$R_REPLICATES" || true
      # Linear extrapolation to 200 replicates: t(R) = a + b R.
      awk -F'\t' -v h="$half" -v f="$R_REPLICATES" -v R=$REPLICATES '
        $1=="replicate_r_half"{t1=$3; m1=$4} $1=="replicate_r_full"{t2=$3; m2=$4}
        END{ if (t1!="" && t2!="" && t1!="NaN" && t2!="NaN") { b=(t2-t1)/(f-h); a=t2-b*f;
             mb=(m2-m1)/(f-h); ma=m2-mb*f;
             printf "replicate\tr\t%.2f\t%.0f\textrapolated to %d replicates from %d and %d\n", a+b*R, ma+mb*R, R, h, f } }' \
        "$TIMES" >>"$TIMES"
    fi
  fi
done

python3 "$HERE/report.py" "$WORK"
