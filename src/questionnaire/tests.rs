//! Tests of questionnaire loading and of the cvs-core indicators against the R reference.
