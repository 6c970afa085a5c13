//! "Did you mean": which known name (a key, profile, binary, feature) a
//! misspelt one most likely meant, ranked by edit distance and
//! Jaro-Winkler similarity (strsim).

/// Names longer than this get no "did you mean" (edit distance is quadratic).
const MAX_SUGGESTION_INPUT: usize = 64;

/// Up to `most` candidates that look like what `wrong` meant, most similar
/// first; at least the nearest one when there is any candidate.
pub fn likely_choices<'c>(
    wrong: &str,
    candidates: impl IntoIterator<Item = &'c str>,
    most: usize,
) -> Vec<&'c str> {
    let ranked = ranked(wrong, candidates);
    let likely: Vec<&str> = ranked
        .iter()
        .copied()
        .filter(|candidate| wrong.len() <= MAX_SUGGESTION_INPUT && is_likely_typo(wrong, candidate))
        .take(most)
        .collect();
    if likely.is_empty() {
        ranked.into_iter().take(1).collect()
    } else {
        likely
    }
}

/// Candidates ordered by similarity to `wrong`, most similar first (stable
/// for ties).
pub fn ranked<'c>(wrong: &str, candidates: impl IntoIterator<Item = &'c str>) -> Vec<&'c str> {
    let mut scored: Vec<(f64, &str)> = candidates
        .into_iter()
        .map(|candidate| (similarity(wrong, candidate), candidate))
        .collect();
    scored.sort_by(|left, right| right.0.total_cmp(&left.0));
    scored.into_iter().map(|(_, candidate)| candidate).collect()
}

/// The candidate close enough to `wrong` to be a likely typo, if any.
pub fn nearest<'c>(wrong: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    if wrong.len() > MAX_SUGGESTION_INPUT {
        return None;
    }
    ranked(wrong, candidates)
        .into_iter()
        .next()
        .filter(|candidate| is_likely_typo(wrong, candidate))
}

fn similarity(wrong: &str, candidate: &str) -> f64 {
    if wrong.len() > MAX_SUGGESTION_INPUT {
        return 0.0;
    }
    let wrong = wrong.to_lowercase();
    strsim::normalized_damerau_levenshtein(&wrong, candidate)
        .max(strsim::jaro_winkler(&wrong, candidate) - 0.1)
}

fn is_likely_typo(wrong: &str, candidate: &str) -> bool {
    let lowered = wrong.to_lowercase();
    let distance = strsim::damerau_levenshtein(&lowered, candidate);
    let longest = lowered.chars().count().max(candidate.chars().count());
    distance <= (longest / 3).max(1)
        || strsim::jaro_winkler(&lowered, candidate) >= 0.85
        || (lowered.len() >= 3 && candidate.contains(lowered.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typo_finds_its_name_and_a_stranger_finds_none() {
        let names = ["release", "dev", "release-lto"];
        assert_eq!(nearest("relase", names), Some("release"));
        assert_eq!(nearest("RELEASE", names), Some("release"));
        assert_eq!(nearest("zzzzzzzz", names), None);
        assert_eq!(nearest(&"r".repeat(65), names), None, "too long to rank");
        // No likely typo: still the nearest one, and no more than asked.
        assert_eq!(likely_choices("zzzzzzzz", names, 5).len(), 1);
        assert_eq!(likely_choices("release", names, 1), ["release"]);
        assert_eq!(ranked("dev", names)[0], "dev");
    }
}
