//! Finding the chunks a query needs. Matchers arrive as closures so that this crate does not
//! depend on the LogQL crate; the querier wraps its parsed matchers.

use std::fmt;

use lode_model::Labels;

use crate::{ChunkRef, IndexObject};

/// One label matcher: the label's name and a predicate on its value. A series without the label
/// is tested with the value `""`, as in Loki and Prometheus, so `{env!="prod"}` also selects
/// series that have no `env` at all.
pub struct LabelMatch<'a> {
    pub name: &'a str,
    pub matches: Box<dyn Fn(&str) -> bool + 'a>,
}

impl<'a> LabelMatch<'a> {
    pub fn new(name: &'a str, matches: impl Fn(&str) -> bool + 'a) -> Self {
        LabelMatch {
            name,
            matches: Box::new(matches),
        }
    }

    /// `name="value"`.
    pub fn eq(name: &'a str, value: &'a str) -> Self {
        Self::new(name, move |v| v == value)
    }

    /// `name!="value"`.
    pub fn ne(name: &'a str, value: &'a str) -> Self {
        Self::new(name, move |v| v != value)
    }
}

impl fmt::Debug for LabelMatch<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LabelMatch")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl IndexObject {
    /// The series matching every matcher, each with its chunks that overlap `[from, through]`
    /// (both ends inclusive; a half-open query `[start, end)` passes `end - 1`). Series with no
    /// overlapping chunk are left out. No matchers selects every series.
    ///
    /// Matchers that reject `""` select through postings (union over the label's matching values,
    /// intersected across matchers), which touches only series carrying the label; the rest,
    /// which would also accept series lacking the label, are checked on the candidates' labels.
    pub fn select(&self, matchers: &[LabelMatch<'_>], from: i64, through: i64) -> Vec<(&Labels, Vec<ChunkRef>)> {
        let (by_postings, by_labels): (Vec<&LabelMatch<'_>>, Vec<&LabelMatch<'_>>) =
            matchers.iter().partition(|m| !(m.matches)(""));

        let mut candidates: Option<Vec<u32>> = None;
        for m in by_postings {
            let mut ids: Vec<u32> = self
                .values_of(m.name)
                .iter()
                .filter(|(v, _)| (m.matches)(v))
                .flat_map(|(_, ids)| ids.iter().copied())
                .collect();
            ids.sort_unstable();
            // A series has one value per name, so lists of different values are disjoint; the
            // dedup only guards against that invariant breaking.
            debug_assert!(ids.windows(2).all(|w| w[0] != w[1]));
            ids.dedup();
            let next = match candidates {
                None => ids,
                Some(prev) => intersect(&prev, &ids),
            };
            if next.is_empty() {
                return Vec::new();
            }
            candidates = Some(next);
        }

        // No postings matcher: every series is a candidate.
        let candidates = candidates.unwrap_or_else(|| (0..self.num_series() as u32).collect());
        candidates
            .into_iter()
            .filter_map(|id| self.series_by_id(id))
            .filter(|(labels, _)| by_labels.iter().all(|m| (m.matches)(labels.get(m.name).unwrap_or(""))))
            .filter_map(|(labels, chunks)| {
                let hits: Vec<ChunkRef> = chunks.iter().filter(|c| c.overlaps(from, through)).copied().collect();
                (!hits.is_empty()).then_some((labels, hits))
            })
            .collect()
    }
}

/// Intersection of two ascending lists.
fn intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(a.len().min(b.len()));
    while let (Some(&x), Some(&y)) = (a.get(i), b.get(j)) {
        match x.cmp(&y) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(x);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::IndexBuilder;

    fn labels(s: &str) -> Labels {
        Labels::parse(s).unwrap()
    }

    fn chunk(l: &Labels, from: i64, through: i64) -> ChunkRef {
        ChunkRef {
            fingerprint: l.fingerprint(),
            from,
            through,
            checksum: 7,
            size: 100,
            entries: 1,
        }
    }

    /// Four streams; each has a chunk over [0, 10] and one over [20, 30].
    fn index() -> IndexObject {
        let mut b = IndexBuilder::new("t", 0);
        for s in [
            r#"{job="app", env="prod"}"#,
            r#"{job="app", env="dev"}"#,
            r#"{job="db", env="prod", tier="1"}"#,
            r#"{job="cache"}"#,
        ] {
            let l = labels(s);
            b.add_chunk(&l, chunk(&l, 0, 10));
            b.add_chunk(&l, chunk(&l, 20, 30));
        }
        IndexObject::decode(&b.finish()).unwrap()
    }

    /// Selected streams as printed label sets, in id order.
    fn names(idx: &IndexObject, ms: &[LabelMatch<'_>]) -> Vec<String> {
        idx.select(ms, i64::MIN, i64::MAX)
            .into_iter()
            .map(|(l, _)| l.to_string())
            .collect()
    }

    #[test]
    fn equality_and_inequality() {
        let idx = index();
        assert_eq!(
            names(&idx, &[LabelMatch::eq("job", "app")]),
            [r#"{env="dev", job="app"}"#, r#"{env="prod", job="app"}"#]
        );
        assert_eq!(
            names(&idx, &[LabelMatch::eq("job", "app"), LabelMatch::ne("env", "dev")]),
            [r#"{env="prod", job="app"}"#]
        );
        assert_eq!(
            names(&idx, &[LabelMatch::eq("env", "prod"), LabelMatch::eq("job", "db")]),
            [r#"{env="prod", job="db", tier="1"}"#]
        );
        assert!(names(&idx, &[LabelMatch::eq("job", "app"), LabelMatch::eq("job", "db")]).is_empty());
        assert!(names(&idx, &[LabelMatch::eq("nope", "x")]).is_empty());
        assert_eq!(names(&idx, &[]).len(), 4);
    }

    #[test]
    fn regex_like_closures() {
        let idx = index();
        // job=~"app|cache"
        let m = LabelMatch::new("job", |v| v == "app" || v == "cache");
        assert_eq!(names(&idx, &[m]).len(), 3);
        // job=~"c.*", env!~"prod|dev": the second also matches "" and is checked on labels.
        let ms = [
            LabelMatch::new("job", |v| v.starts_with('c')),
            LabelMatch::new("env", |v| v != "prod" && v != "dev"),
        ];
        assert_eq!(names(&idx, &ms), [r#"{job="cache"}"#]);
    }

    #[test]
    fn missing_label_counts_as_empty() {
        let idx = index();
        // tier="" selects the streams without a tier.
        assert_eq!(names(&idx, &[LabelMatch::eq("tier", "")]).len(), 3);
        // env!="prod" also selects the stream with no env at all.
        assert_eq!(
            names(&idx, &[LabelMatch::ne("env", "prod")]),
            [r#"{env="dev", job="app"}"#, r#"{job="cache"}"#]
        );
        // tier=~".+" only streams with a tier; tier=~".*" all of them.
        assert_eq!(names(&idx, &[LabelMatch::new("tier", |v| !v.is_empty())]).len(), 1);
        assert_eq!(names(&idx, &[LabelMatch::new("tier", |_| true)]).len(), 4);
        // A label nobody has, matched by != something: every stream.
        assert_eq!(names(&idx, &[LabelMatch::ne("nope", "x")]).len(), 4);
    }

    #[test]
    fn time_overlap_is_inclusive() {
        let idx = index();
        let app = [LabelMatch::eq("job", "app"), LabelMatch::eq("env", "prod")];
        let spans = |from, through| -> Vec<(i64, i64)> {
            idx.select(&app, from, through)
                .into_iter()
                .flat_map(|(_, cs)| cs.into_iter().map(|c| (c.from, c.through)))
                .collect()
        };
        assert_eq!(spans(10, 20), [(0, 10), (20, 30)]);
        assert_eq!(spans(11, 19), []);
        assert_eq!(spans(5, 5), [(0, 10)]);
        assert_eq!(spans(30, 100), [(20, 30)]);
        assert_eq!(spans(31, 100), []);
        assert_eq!(spans(-100, -1), []);
        // No overlap anywhere: the stream is left out, not returned with no chunks.
        assert!(idx.select(&app, 11, 19).is_empty());
    }

    #[test]
    fn intersect_lists() {
        assert_eq!(intersect(&[1, 3, 5, 7], &[2, 3, 4, 7, 9]), [3, 7]);
        assert_eq!(intersect(&[], &[1]), [] as [u32; 0]);
    }

    proptest! {
        /// select through postings gives exactly what checking every series' labels gives.
        #[test]
        fn select_matches_brute_force(
            series in prop::collection::vec(prop::collection::btree_map("[a-c]", "[xyz]", 0..3), 1..30),
            query in prop::collection::vec(("[a-d]", "[xyz]?", 0u8..4), 0..4),
            (from, through) in (0i64..60, 0i64..60),
        ) {
            let mut b = IndexBuilder::new("t", 0);
            for (i, pairs) in series.iter().enumerate() {
                let l = Labels::from_pairs(pairs.clone().into_iter().collect()).unwrap();
                b.add_chunk(&l, chunk(&l, i as i64, i as i64 + 5));
            }
            let idx = IndexObject::decode(&b.finish()).unwrap();
            // op: 0 "=", 1 "!=", 2 "=~ value|z", 3 "!~ value|z".
            let pred = |op: u8, want: &str, v: &str| match op {
                0 => v == want,
                1 => v != want,
                2 => v == want || v == "z",
                _ => v != want && v != "z",
            };
            let ms: Vec<LabelMatch<'_>> = query
                .iter()
                .map(|(n, want, op)| LabelMatch::new(n, move |v| pred(*op, want, v)))
                .collect();
            let got: Vec<(&Labels, Vec<ChunkRef>)> = idx.select(&ms, from, through);
            let want: Vec<(&Labels, Vec<ChunkRef>)> = idx
                .series()
                .filter(|(_, l, _)| query.iter().all(|(n, want, op)| pred(*op, want, l.get(n).unwrap_or(""))))
                .map(|(_, l, cs)| (l, cs.iter().filter(|c| c.overlaps(from, through)).copied().collect::<Vec<_>>()))
                .filter(|(_, cs)| !cs.is_empty())
                .collect();
            prop_assert_eq!(got, want);
        }
    }
}
