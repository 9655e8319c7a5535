//! The estimation choices that a configuration names: the variance method and the degrees of
//! freedom of domain intervals. They are the estimate stage's own types, so that the stage never
//! imports the configuration (which builds them).

/// Variance estimation method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarianceMethod {
    /// Taylor linearization (R `svyrecvar`).
    Taylor,
    /// Delete-one-PSU jackknife, unstratified designs (R `type = "JK1"`).
    Jk1,
    /// Stratified delete-one-PSU jackknife (R `type = "JKn"`).
    Jkn,
    /// Balanced repeated replication, 2 PSUs per stratum (R `type = "BRR"`).
    Brr,
    /// Fay's BRR with `fay_rho` (R `type = "Fay"`).
    Fay,
    /// Canty–Davison bootstrap (R `type = "bootstrap"`).
    Bootstrap,
    /// Rao–Wu (n_h − 1) bootstrap (R `type = "subbootstrap"`).
    Subbootstrap,
    /// Successive difference replication (Fay & Train 1995).
    Sdr,
    /// Replicate weights supplied in the data file (R `svrepdesign`).
    Supplied,
}

impl VarianceMethod {
    /// Every method, with its config and output name.
    pub const ALL: [(VarianceMethod, &'static str); 9] = [
        (VarianceMethod::Taylor, "taylor"),
        (VarianceMethod::Jk1, "jk1"),
        (VarianceMethod::Jkn, "jkn"),
        (VarianceMethod::Brr, "brr"),
        (VarianceMethod::Fay, "fay"),
        (VarianceMethod::Bootstrap, "bootstrap"),
        (VarianceMethod::Subbootstrap, "subbootstrap"),
        (VarianceMethod::Sdr, "sdr"),
        (VarianceMethod::Supplied, "supplied"),
    ];

    /// Name written to the `variance` output column.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(m, _)| *m == self)
            .map_or("taylor", |(_, n)| n)
    }

    /// The method whose [`VarianceMethod::as_str`] is `name`, as read back from an output file.
    pub fn from_name(name: &str) -> Option<VarianceMethod> {
        Self::ALL.iter().find(|(_, n)| *n == name).map(|(m, _)| *m)
    }
}

/// Which degrees of freedom a domain's interval uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DomainDf {
    /// `degf()` of the domain subset (R `svyciprop` default on a subset design).
    Subset,
    /// `degf()` of the full design (what `confint(svyby(...), df = degf(design))` uses).
    Full,
}
