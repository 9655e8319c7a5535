//! TOML parsing of questionnaires (STUB).
use super::{Questionnaire, QuestionnaireError};
use std::path::Path;

pub(super) fn load(path: &Path) -> Result<Questionnaire, QuestionnaireError> {
    Err(QuestionnaireError::Invalid(format!("{}: not implemented", path.display())))
}
