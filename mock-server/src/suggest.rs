//! "Did you mean …?" for names a person types: scopes, duration units.

/// The candidate closest to `given`, when it is close enough to be a typo.
pub fn closest<'a>(given: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(&given.to_lowercase(), &c.to_lowercase()), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// ` (did you mean 'x'?)`, or nothing when no candidate is close.
pub fn hint<'a>(given: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    closest(given, candidates).map(|c| format!(" (did you mean '{c}'?)")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typo_gets_the_name_it_was_meant_to_be_and_a_stranger_gets_none() {
        let scopes = ["contacts.readonly", "contacts.write", "opportunities.readonly"];
        assert_eq!(closest("contact.readonly", scopes), Some("contacts.readonly"));
        assert_eq!(closest("contacts.writ", scopes), Some("contacts.write"));
        assert_eq!(closest("zzz", scopes), None);
        assert_eq!(hint("zzz", scopes), "");
        assert_eq!(hint("dayz", ["d", "days", "h"]), " (did you mean 'days'?)");
    }
}
