//! The storage contract for lists: pages through ties without repeats or gaps, and filters by each JSON type.

use super::*;

/// Reads a whole list in pages of `limit`, each starting after the previous page's last key and id.
pub(crate) async fn all_pages(storage: &Arc<dyn Storage>, query: ListQuery) -> Vec<Listed> {
    let mut items: Vec<Listed> = Vec::new();
    let mut query = query;
    for _ in 0..100 {
        let page = storage.list(query.clone()).await.expect("a page");
        assert!(page.len() <= query.limit);
        let Some(last) = page.last() else { return items };
        query.after = Some((last.key.clone(), last.record.id.clone()));
        items.extend(page);
    }
    panic!("paging does not end");
}

pub(crate) async fn lists_page_through_ties_without_repeating_or_skipping(storage: Arc<dyn Storage>) {
    let ranks = [3, 1, 3, 2, 1, 3, 2, 3, 1];
    for (n, rank) in ranks.iter().enumerate() {
        let data = json!({ "rank": rank, "name": format!("n{}", rank * 10) });
        create(&storage, "item", &format!("ITM-{n}"), data).await;
    }
    create(&storage, "item", "ITM-9", json!({})).await;
    create(&storage, "other", "OTH-1", json!({ "rank": 0 })).await;

    let rank_order = OrderKey::Field("rank".to_owned(), "integer".to_owned());
    for descending in [false, true] {
        for limit in [1, 2, 4, 100] {
            let items = all_pages(&storage, list_query(rank_order.clone(), descending, limit)).await;
            let mut got: Vec<(i64, String)> = items
                .iter()
                .map(|l| (l.record.data.get("rank").and_then(Value::as_i64).unwrap_or(-1), l.record.id.clone()))
                .collect();
            assert_eq!(got.len(), 10, "every item once, limit {limit}: {got:?}");
            if descending {
                got.reverse();
            }
            let mut sorted = got.clone();
            sorted.sort();
            assert_eq!(got, sorted, "by rank then id, the absent rank first, descending {descending}");
            assert_eq!(got[0], (-1, "ITM-9".to_owned()));
        }
    }
    let by_name =
        all_pages(&storage, list_query(OrderKey::Field("name".to_owned(), "string".to_owned()), false, 3)).await;
    let names: Vec<&str> =
        by_name.iter().map(|l| l.record.data.get("name").and_then(Value::as_str).unwrap_or("")).collect();
    assert_eq!(names, ["", "n10", "n10", "n10", "n20", "n20", "n30", "n30", "n30", "n30"]);

    // Creates in one millisecond tie on createdAt, and the id breaks the tie.
    for order in [OrderKey::CreatedAt, OrderKey::UpdatedAt, OrderKey::Id] {
        let items = all_pages(&storage, list_query(order.clone(), false, 3)).await;
        let ids: Vec<&str> = items.iter().map(|l| l.record.id.as_str()).collect();
        assert_eq!(ids.len(), 10, "{order:?}: {ids:?}");
        let keys: Vec<(Value, &str)> = items.iter().map(|l| (l.key[0].clone(), l.record.id.as_str())).collect();
        if order == OrderKey::Id {
            assert_eq!(ids, (0..10).map(|n| format!("ITM-{n}")).collect::<Vec<_>>());
        } else {
            assert!(keys.windows(2).all(|w| (w[0].0.as_u64(), w[0].1) < (w[1].0.as_u64(), w[1].1)), "{keys:?}");
        }
    }
}

pub(crate) async fn lists_filter_by_strings_numbers_booleans_and_null(storage: Arc<dyn Storage>) {
    let items = [
        ("ITM-1", json!({ "n": 3, "s": "a", "b": true, "z": null })),
        ("ITM-2", json!({ "n": "3", "s": "b", "b": false })),
        ("ITM-3", json!({ "n": 3.0, "s": "a", "b": "true", "z": 0 })),
        ("ITM-4", json!({ "n": 4, "s": "A", "z": "" })),
    ];
    for (id, data) in items {
        create(&storage, "item", id, data).await;
    }
    let filtered = |filter: Vec<(&'static str, Value)>| {
        let storage = Arc::clone(&storage);
        async move {
            let mut query = list_query(OrderKey::Id, false, 100);
            query.filter = filter.into_iter().map(|(f, v)| (f.to_owned(), v)).collect();
            let page = storage.list(query).await.expect("a page");
            page.into_iter().map(|l| l.record.id).collect::<Vec<_>>()
        }
    };
    assert_eq!(filtered(vec![("n", json!(3))]).await, ["ITM-1", "ITM-3"], "3 and 3.0, never \"3\"");
    assert_eq!(filtered(vec![("n", json!("3"))]).await, ["ITM-2"]);
    assert_eq!(filtered(vec![("s", json!("a"))]).await, ["ITM-1", "ITM-3"], "strings match exactly");
    assert_eq!(filtered(vec![("b", json!(true))]).await, ["ITM-1"], "a boolean is not the string \"true\"");
    assert_eq!(filtered(vec![("b", json!(false))]).await, ["ITM-2"]);
    assert_eq!(filtered(vec![("b", Value::Null)]).await, ["ITM-4"], "null matches an absent field");
    assert_eq!(filtered(vec![("z", Value::Null)]).await, ["ITM-1", "ITM-2"], "and a null one, not 0 or \"\"");
    assert_eq!(filtered(vec![("n", json!(3)), ("s", json!("a")), ("b", json!(true))]).await, ["ITM-1"]);
    assert!(filtered(vec![("missing", json!(1))]).await.is_empty());

    let mut query = list_query(OrderKey::Id, false, 100);
    query.owner = Some("bob".to_owned());
    assert!(storage.list(query).await.expect("a page").is_empty(), "only bob's");
    storage.create(new_record("item", "ITM-5", "bob", json!({ "n": 3 })), None).await.expect("created");
    let mut query = list_query(OrderKey::Id, false, 100);
    query.owner = Some("bob".to_owned());
    query.filter = vec![("n".to_owned(), json!(3))];
    let page = storage.list(query).await.expect("a page");
    assert_eq!(page.iter().map(|l| l.record.id.as_str()).collect::<Vec<_>>(), ["ITM-5"]);
}

/// A list read at the head shows the resources exactly as the head's event left them, while writes go on: every
/// resource in the page is at the version its last event up to the head gave it, and every resource whose last
/// event up to the head left it present is in the page.
pub(crate) async fn a_list_at_the_head_is_one_moment(storage: Arc<dyn Storage>) {
    for n in 0..20 {
        create(&storage, "order", &format!("O-{n:02}"), json!({ "n": 0 })).await;
    }
    let writer = {
        let storage = Arc::clone(&storage);
        tokio::spawn(async move {
            for round in 1..=15 {
                for n in 0..20 {
                    let id = format!("O-{n:02}");
                    storage.update("order", &id, "olga", set("n", json!(round))).await.expect("updated");
                }
            }
        })
    };
    let mut moments = 0;
    while !writer.is_finished() || moments == 0 {
        let query = ListQuery { resource_type: "order".to_owned(), ..list_query(OrderKey::Id, false, 100) };
        let (page, head) = storage.list_at_head(query).await.expect("listed");
        let events = storage.events_after("order", None, 0, 10_000).await.expect("events");
        let mut expected = std::collections::BTreeMap::new();
        for event in events.iter().filter(|e| e.seq <= head) {
            expected.insert(event.id.clone(), event.version);
        }
        let seen: std::collections::BTreeMap<String, u64> =
            page.iter().map(|l| (l.record.id.clone(), l.record.version)).collect();
        assert_eq!(seen, expected, "the page at head {head} is what the log says up to it");
        moments += 1;
    }
    writer.await.expect("the writer finished");
}

/// Several order keys, each in its own direction (and all in one), page without repeats or gaps; the id decides
/// the last ties in the direction of the last key. A count is of the whole list, whatever the page.
pub(crate) async fn lists_order_by_several_keys_and_count_every_page(storage: Arc<dyn Storage>) {
    let ranks = [2, 1, 3, 2, 1, 3, 2, 3, 1, 2, 2, 1];
    let names = ["b", "a", "c", "a", "b", "b", "b", "a", "a", "c", "b", "c"];
    for (n, (rank, name)) in ranks.iter().zip(names).enumerate() {
        create(&storage, "item", &format!("ITM-{n:02}"), json!({ "rank": rank, "name": name })).await;
    }
    let rank = OrderKey::Field("rank".to_owned(), "integer".to_owned());
    let name = OrderKey::Field("name".to_owned(), "string".to_owned());
    for (rank_descending, name_descending) in [(false, true), (true, false), (true, true), (false, false)] {
        let order = vec![
            Sort { key: rank.clone(), descending: rank_descending },
            Sort { key: name.clone(), descending: name_descending },
        ];
        let mut expected: Vec<(i64, String, String)> = ranks
            .iter()
            .zip(names)
            .enumerate()
            .map(|(n, (rank, name))| (*rank, name.to_owned(), format!("ITM-{n:02}")))
            .collect();
        expected.sort_by(|a, b| {
            let by_rank = if rank_descending { b.0.cmp(&a.0) } else { a.0.cmp(&b.0) };
            let by_name = if name_descending { b.1.cmp(&a.1) } else { a.1.cmp(&b.1) };
            let by_id = if name_descending { b.2.cmp(&a.2) } else { a.2.cmp(&b.2) };
            by_rank.then(by_name).then(by_id)
        });
        let expected: Vec<String> = expected.into_iter().map(|(_, _, id)| id).collect();
        for limit in [1, 2, 5, 100] {
            let query = ListQuery { order: order.clone(), ..list_query(OrderKey::Id, false, limit) };
            let ids: Vec<String> = all_pages(&storage, query).await.into_iter().map(|l| l.record.id).collect();
            assert_eq!(
                ids, expected,
                "rank descending {rank_descending}, name descending {name_descending}, by {limit}"
            );
        }
    }
    let mut query = list_query(OrderKey::Id, false, 2);
    assert_eq!(storage.count(query.clone()).await.expect("a count"), 12);
    query.filter = vec![("name".to_owned(), json!("b"))];
    query.after = Some((vec![json!("ITM-05")], "ITM-05".to_owned()));
    assert_eq!(storage.count(query).await.expect("a count"), 5, "every page, whatever the cursor and the limit");
}
