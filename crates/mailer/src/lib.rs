//! The mailer worker (being written).
