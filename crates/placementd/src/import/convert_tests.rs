//! Rows in, records out: a small Placement database as tables.

use placement_types::{Timestamp, Uuid};

use super::*;
use crate::import::source::{Cell, TableRows, Tables, QUERIES};

const NOW: Timestamp = Timestamp(1_800_000_000_000_000);

fn i(v: i64) -> Cell {
    Cell::Int(v)
}
fn t(v: &str) -> Cell {
    Cell::Text(v.into())
}
const N: Cell = Cell::Null;

fn uuid_text(n: u128) -> String {
    Uuid::from_u128(n).to_string()
}

/// The tables of [`QUERIES`], with `rows` for the ones named and none for the others.
fn tables(rows: Vec<(&str, Vec<Vec<Cell>>)>) -> Tables {
    let mut rows: std::collections::HashMap<&str, Vec<Vec<Cell>>> = rows.into_iter().collect();
    Tables {
        version: "a082b8bb98d0".into(),
        tables: QUERIES
            .iter()
            .map(|q| TableRows {
                table: q.table,
                columns: q.columns,
                rows: rows.remove(q.table).unwrap_or_default(),
            })
            .collect(),
    }
}

/// VCPU (0) and DISK_GB (2) standard, CUSTOM_GOLD (10001) custom; a tree 1 -> 2 -> 3 listed
/// children first; a sharing provider 4 in aggregate 1 with the root; two consumers, one
/// without allocations.
fn sample() -> Tables {
    let ts = "2026-11-01 10:00:00";
    tables(vec![
        (
            "resource_classes",
            vec![
                vec![i(0), t("VCPU"), t(ts), N],
                vec![i(2), t("DISK_GB"), t(ts), N],
                vec![i(10001), t("CUSTOM_GOLD"), t(ts), t("2026-11-02 10:00:00")],
            ],
        ),
        (
            "traits",
            vec![
                vec![i(1), t("HW_CPU_X86_AVX2"), t(ts)],
                vec![i(2), t("MISC_SHARES_VIA_AGGREGATE"), t(ts)],
                vec![i(3), t("CUSTOM_FAST"), N],
            ],
        ),
        (
            "resource_providers",
            vec![
                vec![
                    i(13),
                    t(&uuid_text(3)),
                    t("leaf"),
                    i(12),
                    i(11),
                    i(12),
                    t(ts),
                    N,
                ],
                vec![
                    i(12),
                    t(&uuid_text(2)),
                    t("mid"),
                    i(3),
                    i(11),
                    i(11),
                    t(ts),
                    N,
                ],
                vec![
                    i(11),
                    t(&uuid_text(1)),
                    t("root"),
                    i(7),
                    i(11),
                    N,
                    t(ts),
                    t(ts),
                ],
                vec![i(14), t(&uuid_text(4)), t("share"), N, i(14), N, N, N],
            ],
        ),
        (
            "inventories",
            vec![
                vec![i(11), i(0), i(8), i(0), i(1), i(8), i(1), t("16")],
                vec![i(14), i(2), i(100), i(0), i(1), i(100), i(1), t("1.5")],
                vec![i(13), i(10001), i(5), i(0), i(1), i(5), i(1), t("1")],
            ],
        ),
        (
            "placement_aggregates",
            vec![
                vec![i(1), t(&uuid_text(100))],
                vec![i(2), t(&uuid_text(101))],
            ],
        ),
        (
            "resource_provider_aggregates",
            vec![vec![i(11), i(1)], vec![i(14), i(1)]],
        ),
        (
            "resource_provider_traits",
            vec![vec![i(11), i(1)], vec![i(11), i(3)], vec![i(14), i(2)]],
        ),
        ("projects", vec![vec![i(1), t("proj-a")]]),
        ("users", vec![vec![i(1), t("user-a")]]),
        ("consumer_types", vec![vec![i(1), t("INSTANCE")]]),
        (
            "consumers",
            vec![
                vec![
                    i(1),
                    t(&uuid_text(50)),
                    i(1),
                    i(1),
                    i(4),
                    i(1),
                    t(ts),
                    t(ts),
                ],
                vec![i(2), t(&uuid_text(51)), i(1), i(1), i(0), N, t(ts), N],
            ],
        ),
        (
            "allocations",
            vec![
                vec![i(11), t(&uuid_text(50)), i(0), i(2)],
                vec![i(14), t(&uuid_text(50)), i(2), i(10)],
                vec![i(13), t(&uuid_text(50)), i(10001), i(1)],
            ],
        ),
    ])
}

#[test]
fn placement_datetimes_become_microseconds() {
    assert_eq!(parse_datetime("1970-01-01 00:00:00"), Some(Timestamp(0)));
    assert_eq!(
        parse_datetime("2026-11-01 10:00:00"),
        Some(Timestamp(1_793_527_200_000_000))
    );
    assert_eq!(
        parse_datetime("2000-02-29 23:59:59.5"),
        Some(Timestamp(951_868_799_500_000))
    );
    assert_eq!(
        parse_datetime("2024-03-01 00:00:00.000123"),
        Some(Timestamp(1_709_251_200_000_123))
    );
    assert_eq!(parse_datetime("2026-13-01 00:00:00"), None);
    assert_eq!(parse_datetime("yesterday"), None);
}

#[test]
fn rows_become_records_with_every_uuid_name_and_generation() {
    let dump = convert(&sample(), NOW).expect("converts");
    let ts = parse_datetime("2026-11-01 10:00:00").expect("date");
    assert_eq!(dump.resource_classes.len(), 1);
    let gold = &dump.resource_classes[0];
    assert_eq!((gold.id, gold.name.as_str()), (10001, "CUSTOM_GOLD"));
    assert_eq!(
        gold.updated_at,
        parse_datetime("2026-11-02 10:00:00").expect("date")
    );
    assert_eq!(dump.traits.len(), 1);
    assert_eq!(dump.traits[0].name, "CUSTOM_FAST");
    assert_eq!(
        dump.traits[0].created_at, NOW,
        "a NULL created_at is the import's time"
    );

    let order: Vec<&str> = dump.providers.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(order, vec!["root", "share", "mid", "leaf"], "parents first");
    let leaf = &dump.providers[3];
    assert_eq!(leaf.uuid, Uuid::from_u128(3));
    assert_eq!(leaf.generation, 12);
    assert_eq!(leaf.parent, Some(Uuid::from_u128(2)));
    assert_eq!(leaf.root, Uuid::from_u128(1));
    assert_eq!((leaf.created_at, leaf.updated_at), (ts, ts));
    assert_eq!(leaf.inventories["CUSTOM_GOLD"].total, 5);
    let root = &dump.providers[0];
    assert_eq!(root.inventories["VCPU"].allocation_ratio, 16.0);
    assert_eq!(
        root.traits.iter().collect::<Vec<_>>(),
        vec!["CUSTOM_FAST", "HW_CPU_X86_AVX2"]
    );
    assert_eq!(
        root.aggregates.iter().collect::<Vec<_>>(),
        vec![&Uuid::from_u128(100)]
    );
    let share = &dump.providers[1];
    assert_eq!(share.generation, 0, "a NULL generation is 0");
    assert_eq!((share.created_at, share.updated_at), (NOW, NOW));
    assert_eq!(share.inventories["DISK_GB"].allocation_ratio, 1.5);

    assert_eq!(dump.consumers.len(), 1);
    let c = &dump.consumers[0];
    assert_eq!(c.uuid, Uuid::from_u128(50));
    assert_eq!(c.generation, 4);
    assert_eq!(
        (c.project_id.as_str(), c.user_id.as_str()),
        ("proj-a", "user-a")
    );
    assert_eq!(c.consumer_type.as_deref(), Some("INSTANCE"));
    let lines: Vec<(u128, &str, i64)> = c
        .allocations
        .iter()
        .map(|a| (a.provider.as_u128(), a.resource_class.as_str(), a.used))
        .collect();
    assert_eq!(
        lines,
        vec![(1, "VCPU", 2), (4, "DISK_GB", 10), (3, "CUSTOM_GOLD", 1)]
    );

    let counts = &dump.counts;
    assert_eq!(
        (counts.providers, counts.inventories, counts.provider_traits),
        (4, 3, 3)
    );
    assert_eq!((counts.aggregates, counts.provider_aggregates), (1, 2));
    assert_eq!(
        (
            counts.consumers,
            counts.skipped_consumers,
            counts.allocations
        ),
        (1, 1, 3)
    );
}

#[test]
fn broken_references_are_named() {
    let mut bad = sample();
    bad.tables
        .iter_mut()
        .find(|t| t.table == "allocations")
        .expect("table")
        .rows
        .push(vec![i(11), t(&uuid_text(77)), i(0), i(1)]);
    let err = convert(&bad, NOW).expect_err("orphan allocation");
    assert!(err.contains("allocations but no consumers row"), "{err}");
    assert!(err.contains(&uuid_text(77)), "{err}");

    let mut bad = sample();
    bad.tables
        .iter_mut()
        .find(|t| t.table == "inventories")
        .expect("table")
        .rows
        .push(vec![i(11), i(999), i(1), i(0), i(1), i(1), i(1), t("1")]);
    let err = convert(&bad, NOW).expect_err("unknown class");
    assert_eq!(
        err,
        "table inventories: resource class id 999 does not exist"
    );
}

#[test]
fn a_parent_cycle_is_refused() {
    let ts = "2026-11-01 10:00:00";
    let cyclic = tables(vec![(
        "resource_providers",
        vec![
            vec![i(1), t(&uuid_text(1)), t("a"), i(0), i(1), i(2), t(ts), N],
            vec![i(2), t(&uuid_text(2)), t("b"), i(0), i(1), i(1), t(ts), N],
        ],
    )]);
    let err = convert(&cyclic, NOW).expect_err("cycle");
    assert!(err.contains("parent cycle"), "{err}");
}
