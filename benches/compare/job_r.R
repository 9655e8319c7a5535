# The comparison job in R `survey`: 11 cvs-core indicators by sex, age group, region and urban,
# on the respondents of a `cvsurvey synth` file (CSV, read with data.table::fread).
#
#   Rscript job_r.R taylor    DATA.csv MARGINS.csv OUT.csv
#   Rscript job_r.R replicate DATA.csv MARGINS.csv OUT.csv [REPLICATES]
#
# taylor:    svydesign(ids = ~psu, strata = ~stratum, weights = ~design_weight, nest = TRUE),
#            svymean / svyby(svymean, na.rm = TRUE): Taylor linearization.
# replicate: as.svrepdesign(type = "bootstrap", replicates = R), rake() on sex, age_group,
#            region, urban (every replicate recalibrated), then svymean / svyby on the replicates.
# Writes indicator,domain_var,domain_value,estimate,se.
suppressMessages({
  library(survey)
  library(data.table)
})
args <- commandArgs(trailingOnly = TRUE)
job <- args[1]
data_path <- args[2]
margins_path <- args[3]
out_path <- args[4]
replicates <- if (length(args) >= 5) as.integer(args[5]) else 200L

types <- c("police", "courts", "health", "education", "tax", "customs", "land", "utilities")
cols <- c("stratum", "psu", "design_weight", "responded", "sex", "age_group", "region", "urban",
          paste0("contact_", types), paste0("bribe_", types), paste0("nbribes_", types),
          "bribe_reported", "theft_12m", "robbery_12m", "assault_12m", "assault_n",
          "assault_reported", "safe_dark")
d <- fread(data_path, select = cols)
d <- d[responded == 1]

# Kleene any(x == 1): TRUE if some 1, else NA if some don't know/refused (8, 9), else FALSE if
# some answer, else NA (not asked).
kleene_any <- function(M) {
  yes <- rowSums(M == 1, na.rm = TRUE) > 0
  dk <- rowSums(M == 8 | M == 9, na.rm = TRUE) > 0
  asked <- rowSums(!is.na(M)) > 0
  ifelse(yes, TRUE, ifelse(dk, NA, ifelse(asked, FALSE, NA)))
}
C <- as.matrix(d[, paste0("contact_", types), with = FALSE])
B <- as.matrix(d[, paste0("bribe_", types), with = FALSE])
N <- as.matrix(d[, paste0("nbribes_", types), with = FALSE])
any_contact <- kleene_any(C)
paid <- kleene_any(B)
asked_n <- !is.na(B) & B == 1
n_bribes <- rowSums(ifelse(asked_n, N, 0))
a <- d$assault_12m
r <- d$robbery_12m
yn <- function(universe, value) ifelse(universe %in% TRUE, as.numeric(value), NA_real_)
d[, I01 := yn(any_contact, paid)]
d[, I02 := yn(contact_police %in% 1 & bribe_police %in% c(1, 2), bribe_police %in% 1)]
d[, I03 := yn(contact_land %in% 1 & bribe_land %in% c(1, 2), bribe_land %in% 1)]
d[, I04 := ifelse(paid %in% TRUE, n_bribes, NA_real_)]
d[, I05 := yn(paid %in% TRUE & bribe_reported %in% c(1, 2), bribe_reported %in% 1)]
d[, I06 := yn(a %in% c(1, 2), a %in% 1)]
d[, I07 := yn(theft_12m %in% c(1, 2), theft_12m %in% 1)]
d[, I08 := ifelse(a %in% 1 | r %in% 1, 1, ifelse(a %in% 2 & r %in% 2, 0, NA_real_))]
d[, I09 := yn(a %in% 1 & assault_reported %in% c(1, 2), assault_reported %in% 1)]
d[, I10 := yn(safe_dark %in% 1:5, safe_dark %in% c(1, 2))]
d[, I11 := ifelse(a %in% c(1, 2), ifelse(a %in% 1, pmin(assault_n, 5), 0), NA_real_)]
ids <- c(I01 = "bribery_prevalence", I02 = "bribery_prevalence_police",
         I03 = "bribery_prevalence_land", I04 = "bribe_frequency",
         I05 = "bribery_reporting_rate", I06 = "assault_prevalence", I07 = "theft_prevalence",
         I08 = "violence_prevalence", I09 = "assault_reporting_rate", I10 = "feel_safe_dark",
         I11 = "assault_incidence_per_1000")
mult <- c(rep(1, 10), 1000)
domains <- c("sex", "age_group", "region", "urban")

des <- svydesign(ids = ~psu, strata = ~stratum, weights = ~design_weight, data = d, nest = TRUE)
if (job == "replicate") {
  m <- fread(margins_path, colClasses = "character")
  pop <- lapply(domains, function(v) {
    mv <- m[variable == v]
    t <- data.frame(x = mv$category, Freq = as.numeric(mv$total))
    names(t)[1] <- v
    t
  })
  for (v in domains) des$variables[[v]] <- as.character(des$variables[[v]])
  des <- as.svrepdesign(des, type = "bootstrap", replicates = replicates)
  des <- rake(des, lapply(domains, function(v) as.formula(paste0("~", v))), pop,
              control = list(maxit = 50, epsilon = 1e-7, verbose = FALSE))
}

rows <- list()
for (k in seq_along(ids)) {
  f <- as.formula(paste0("~", names(ids)[k]))
  est <- svymean(f, des, na.rm = TRUE)
  rows[[length(rows) + 1]] <- data.frame(indicator = ids[k], domain_var = "_T", domain_value = "_T",
    estimate = coef(est)[[1]] * mult[k], se = SE(est)[[1]] * mult[k])
  for (v in domains) {
    b <- svyby(f, as.formula(paste0("~", v)), des, svymean, na.rm = TRUE, covmat = FALSE)
    rows[[length(rows) + 1]] <- data.frame(indicator = ids[k], domain_var = v,
      domain_value = as.character(b[[v]]), estimate = coef(b) * mult[k], se = SE(b) * mult[k])
  }
}
fwrite(do.call(rbind, rows), out_path)
