//! Many `tidings serve` nodes as one service: PostgreSQL shared, Redis between them, nginx in front. Each test
//! runs real processes; a node is killed with SIGKILL, Redis is killed and restarted, a webhook's delivering node
//! dies, presence members of a killed node leave the other nodes, and access rules hold for events that cross
//! nodes.

mod common;

use common::cluster::{create, head, nodes_heard, signed_in, status, subscribe, Cluster, Follower, Writers};
use common::endpoint::Endpoint;
use common::nginx::Nginx;
use common::Served;
use serde_json::json;
use tidings_client::Push;
use tidings_protocol::{ClientMessage, ServerMessage, Update};

/// Waits until a follower has received at least `count` events.
async fn until_received(follower: &Follower, count: usize) {
    let mut last = follower.last.clone();
    let target = follower.start + count as u64;
    tokio::time::timeout(std::time::Duration::from_secs(30), last.wait_for(|seq| *seq >= target))
        .await
        .expect("events arrive")
        .expect("the follower runs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_created_on_one_node_reaches_subscribers_and_its_owner_on_another() {
    let Some(cluster) = Cluster::start("cluster_reach") else { return };
    let (a, b) = (cluster.node("node-a"), cluster.node("node-b"));

    let (watcher, mut watched) = signed_in(&b.url, "olga", &["admin"]).await;
    subscribe(&watcher, None).await.expect("subscribed on node b");
    let (alice, mut alice_pushes) = signed_in(&b.url, "alice", &[]).await;
    let (writer, _w) = signed_in(&a.url, "alice", &[]).await;
    let id = create(&writer, 1).await.expect("created on node a");
    let event = loop {
        match watched.next_within(std::time::Duration::from_secs(10)).await {
            Some(Push::Message(envelope)) => match envelope.message {
                ServerMessage::Event(event) => break event,
                _ => continue,
            },
            other => panic!("no event on node b: {other:?}"),
        }
    };
    assert_eq!(event.id.as_ref().map(|i| i.as_str()), Some(id.as_str()));

    // An admin on node a changes alice's order; alice, connected to node b, hears of it.
    let (admin, _p) = signed_in(&a.url, "olga", &["admin"]).await;
    let update = Update {
        resource_type: tidings_protocol::ResourceType::new("order").expect("type"),
        id: tidings_protocol::ResourceId::new(&id).expect("id"),
        patch: json!({ "status": "paid" }).as_object().cloned().expect("object"),
        expected_version: None,
    };
    assert!(matches!(admin.request(ClientMessage::Update(update)).await, Ok(ServerMessage::Update(_))));
    let notification = loop {
        match alice_pushes.next_within(std::time::Duration::from_secs(10)).await {
            Some(Push::Message(envelope)) => match envelope.message {
                ServerMessage::Notification(notification) => break notification,
                _ => continue,
            },
            other => panic!("alice on node b got no notification: {other:?}"),
        }
    };
    assert!(notification.title.as_str().contains("status is now paid"), "{notification:?}");

    // Each node counts what it holds: b has the watcher and alice, a the writer and the admin.
    let (on_a, on_b) = (status(&a.url), status(&b.url));
    assert_eq!(on_b["node"], "node-b");
    assert_eq!(on_b["connections"], 2);
    assert_eq!(on_b["subscriptions"], 1);
    assert_eq!(on_b["broker"], json!({ "kind": "redis", "connected": true }));
    assert_eq!(
        (on_a["node"].as_str(), on_a["connections"].as_u64(), on_a["subscriptions"].as_u64()),
        (Some("node-a"), Some(2), Some(0))
    );
    drop((alice, writer));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_of_a_killed_node_resume_on_another_with_no_event_lost_or_repeated() {
    let Some(cluster) = Cluster::start("cluster_kill") else { return };
    let (a, b) = (cluster.node("node-a"), cluster.node("node-b"));
    let urls = vec![a.url.clone(), b.url.clone()];
    let mut followers = Vec::new();
    for _ in 0..4 {
        followers.push(Follower::start(&urls).await);
    }
    let writers_on_b = Writers::start(&b.url, 2).await;
    let writers_on_a = Writers::start(&a.url, 1).await;
    until_received(&followers[0], 60).await;

    // Under load: every follower and one writer are on node a when it dies.
    a.crash();
    let died_with_a = writers_on_a.stop().await;
    let before = followers[0].received();
    until_received(&followers[0], before + 100).await;
    let acknowledged = writers_on_b.stop().await + died_with_a;

    let last = head(&b.url).await;
    assert!(last as usize >= acknowledged, "every acknowledged create has its event ({last} < {acknowledged})");
    for follower in followers {
        assert!(!follower.resumes.lock().expect("lock").is_empty(), "the follower moved to node b");
        follower.assert_complete_through(last).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_end_with_every_event_in_order_across_a_redis_restart() {
    let Some(mut cluster) = Cluster::start("cluster_redis") else { return };
    let (a, b) = (cluster.node("node-a"), cluster.node("node-b"));
    // Followers on node b, writers on node a: every event crosses the broker (or the log, when Redis is gone).
    let urls = vec![b.url.clone()];
    let followers = vec![Follower::start(&urls).await, Follower::start(&urls).await];
    let writers = Writers::start(&a.url, 2).await;
    until_received(&followers[0], 60).await;

    cluster.restart_redis();
    let before = followers[0].received();
    until_received(&followers[0], before + 100).await;
    writers.stop().await;

    let last = head(&a.url).await;
    for follower in followers {
        assert!(follower.resumes.lock().expect("lock").is_empty(), "the followers' own connections never broke");
        follower.assert_complete_through(last).await;
    }
    assert_eq!(status(&b.url)["broker"]["connected"], true, "node b is back on Redis");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_nginx_a_client_cannot_tell_which_node_it_is_on() {
    let Some(cluster) = Cluster::start("cluster_nginx") else { return };
    let (a, b) = (cluster.node("node-a"), cluster.node("node-b"));
    let Some(nginx) = Nginx::start(&[&a.url, &b.url]) else { return };
    let url = nginx.url();
    let through_nginx = vec![url.clone()];

    // nginx spreads the connections over both nodes; every follower sees every write, wherever either landed.
    let followers = vec![Follower::start(&through_nginx).await, Follower::start(&through_nginx).await];
    let writers = Writers::start(&url, 2).await;
    until_received(&followers[0], 40).await;
    let spread = [status(&a.url)["connections"].as_u64(), status(&b.url)["connections"].as_u64()];
    assert!(spread.iter().all(|n| n.unwrap_or(0) >= 1), "both nodes serve clients: {spread:?}");

    // One node dies; nginx sends the reconnections to the other, and the followers resume through it. The
    // writers that were on it stop with it; new ones land on the node that lives.
    a.crash();
    writers.stop().await;
    let writers = Writers::start(&url, 2).await;
    let before = followers[0].received();
    until_received(&followers[0], before + 60).await;
    writers.stop().await;
    let last = head(&url).await;
    for follower in followers {
        follower.assert_complete_through(last).await;
    }
}

/// A cluster's webhook is delivered by one node at a time; when that node is killed with SIGKILL, another takes
/// over once its lease runs out, from the stored cursor: every event arrives, in order (one in flight at the
/// crash may arrive twice, at least once being the promise).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_goes_on_from_another_node_when_its_node_is_killed() {
    let Some(cluster) = Cluster::start("cluster_webhook") else { return };
    let endpoint = Endpoint::start();
    let hook = format!(
        r#"[{{name="orders-out", url="{}", resource_type="order", secret="a-secret-of-some-length", lease_ms=1500, retry_base_ms=50, retry_max_ms=200}}]"#,
        endpoint.url
    );
    let node = |name: &str| {
        let mut settings = cluster.node_settings(name);
        settings.push(("TIDINGS_WEBHOOKS", hook.clone()));
        let settings: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Served::start_in(tempfile::tempdir().expect("temp dir"), &settings)
    };
    let patience = std::time::Duration::from_secs(30);
    // Node a alone first, so that it holds the hook.
    let a = node("node-a");
    let (on_a, _a_pushes) = signed_in(&a.url, "alice", &[]).await;
    for n in 0..5 {
        create(&on_a, n).await.expect("created");
    }
    endpoint.until_all(5, patience).await;
    let b = node("node-b");
    for n in 5..10 {
        create(&on_a, n).await.expect("created");
    }
    // Node a dies, perhaps in the middle of a delivery; node b goes on, and more orders come through it.
    a.crash();
    let (on_b, _b_pushes) = signed_in(&b.url, "bob", &[]).await;
    for n in 10..15 {
        create(&on_b, n).await.expect("created");
    }
    endpoint.until_all(15, patience).await;
    let seqs = endpoint.seqs();
    assert!(seqs.windows(2).all(|pair| pair[0] <= pair[1]), "in seq order, across the crash: {seqs:?}");
    assert!(seqs.len() <= 16, "at most the event in flight at the crash came twice: {seqs:?}");
}

/// The members present at the orders' topic, as a fresh follower on `url` is told.
async fn members(url: &str) -> Vec<String> {
    let (client, _pushes) = signed_in(url, "auditor", &["admin"]).await;
    let topic = tidings_protocol::Topic::new("presence:order").expect("topic");
    let subscribe = tidings_protocol::Subscribe { topic, since: None, query: None, snapshot: None };
    match client.request(ClientMessage::Subscribe(subscribe)).await {
        Ok(ServerMessage::Subscribe(reply)) => {
            let mut users: Vec<String> =
                reply.items.unwrap_or_default().into_iter().map(|m| m.owner_id.as_str().to_owned()).collect();
            users.sort();
            users
        }
        other => panic!("no presence on {url}: {other:?}"),
    }
}

/// Waits until a fresh follower on `url` is told exactly `expected` (sorted user names); returns how long it took.
async fn until_members(url: &str, expected: &[&str], patience: std::time::Duration) -> std::time::Duration {
    let started = std::time::Instant::now();
    loop {
        let now = members(url).await;
        if now == expected {
            return started.elapsed();
        }
        assert!(started.elapsed() < patience, "{url} still shows {now:?}, not {expected:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Presence is in memory only, on every node: a member that joins on one node is seen on the other (also by a
/// node that starts later, which asks for what it missed), and when a node is killed, the others drop its members
/// within the documented bound (docs/protocol.md, 8.7: 5 s of silence, checked every second).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_crosses_nodes_and_a_killed_nodes_members_leave() {
    let Some(cluster) = Cluster::start("cluster_presence") else { return };
    let a = cluster.node("node-a");
    let join = |user: &'static str| {
        let url = a.url.clone();
        async move {
            let (client, pushes) = signed_in(&url, user, &[]).await;
            let data = json!({ "topic": "order", "state": { "name": user } });
            let create = tidings_protocol::Create {
                resource_type: tidings_protocol::ResourceType::new("presence").expect("type"),
                data: data.as_object().cloned().expect("object"),
            };
            let joined = client.request(ClientMessage::Create(create)).await;
            assert!(matches!(joined, Ok(ServerMessage::Create(_))), "{joined:?}");
            (client, pushes)
        }
    };
    let _alice = join("alice").await;
    // Node b starts after Alice joined on node a: it learns of her from node a's beat and answer.
    let b = cluster.node("node-b");
    let patience = std::time::Duration::from_secs(15);
    until_members(&b.url, &["alice"], patience).await;
    let (bob, _bob_pushes) = signed_in(&b.url, "bob", &[]).await;
    let data = json!({ "topic": "order", "state": { "name": "bob" } });
    let create = tidings_protocol::Create {
        resource_type: tidings_protocol::ResourceType::new("presence").expect("type"),
        data: data.as_object().cloned().expect("object"),
    };
    assert!(matches!(bob.request(ClientMessage::Create(create)).await, Ok(ServerMessage::Create(_))));
    until_members(&a.url, &["alice", "bob"], patience).await;
    // Each node hears the other, as an operator sees in the admin API.
    assert_eq!(nodes_heard(&b.url), ["node-a", "node-b"]);

    // A follower on node b when node a dies hears Alice leave, and node b shows only Bob.
    let (follower, mut followed) = signed_in(&b.url, "olga", &["admin"]).await;
    let topic = tidings_protocol::Topic::new("presence:order").expect("topic");
    let subscribe = tidings_protocol::Subscribe { topic, since: None, query: None, snapshot: None };
    assert!(matches!(follower.request(ClientMessage::Subscribe(subscribe)).await, Ok(ServerMessage::Subscribe(_))));
    let killed = std::time::Instant::now();
    a.crash();
    let left = loop {
        match followed.next_within(patience).await {
            Some(Push::Message(envelope)) => match envelope.message {
                ServerMessage::Event(event) if event.event_type.as_str() == "presence_deleted" => break event,
                _ => continue,
            },
            other => panic!("no leave on node b: {other:?}"),
        }
    };
    let took = killed.elapsed();
    assert_eq!(left.owner_id.as_ref().map(|u| u.as_str()), Some("alice"));
    assert!(took < std::time::Duration::from_secs(8), "within the bound of 5 s and a beat, not {took:?}");
    assert_eq!(members(&b.url).await, ["bob"]);
    assert_eq!(nodes_heard(&b.url), ["node-b"], "the killed node is no longer listed");
}

/// The events of `pushes` until one of `resource`, as (event type, id, reason).
async fn next_of(pushes: &mut tidings_client::Pushes) -> (String, String, Option<String>) {
    loop {
        match pushes.next_within(std::time::Duration::from_secs(10)).await {
            Some(Push::Message(envelope)) => match envelope.message {
                ServerMessage::Event(event) => {
                    let id = event.id.as_ref().map(|id| id.as_str().to_owned()).unwrap_or_default();
                    let reason = event.reason.map(|reason| format!("{reason:?}"));
                    return (event.event_type.as_str().to_owned(), id, reason);
                }
                _ => continue,
            },
            other => panic!("no event: {other:?}"),
        }
    }
}

/// The multi-tenant rules of docs/resource-types.md across two nodes: members of one organization on node b hear
/// of its projects made on node a, and nobody else does; when an admin on node a moves a project to another
/// organization, its old members on node b see it leave as hidden, and its new ones see it arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_hold_for_events_that_cross_nodes() {
    let Some(cluster) = Cluster::start("cluster_rules") else { return };
    let page =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/resource-types.md"))
            .expect("docs/resource-types.md");
    let block = page
        .split("```toml\n")
        .skip(1)
        .filter_map(|rest| rest.split_once("```").map(|(block, _)| block))
        .find(|block| block.starts_with("# tenants.toml"))
        .expect("the tenants.toml block");
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("tenants.toml");
    std::fs::write(&config, block).expect("written");
    let (a, b) = (cluster.node_with_config("node-a", &config), cluster.node_with_config("node-b", &config));
    let member = |url: String, user: &'static str, claims: Vec<&'static str>, roles: Vec<&'static str>| async move {
        let (client, pushes, _) = tidings_client::Client::connect(&url).await.expect("connect");
        let token = common::cluster::token_with(user, &roles, "10m", &claims);
        client.auth(&token).await.expect("auth");
        (client, pushes)
    };
    let subscribe = || {
        let topic = tidings_protocol::Topic::new("project").expect("topic");
        ClientMessage::Subscribe(tidings_protocol::Subscribe { topic, since: None, query: None, snapshot: None })
    };
    let (ann, mut ann_pushes) = member(b.url.clone(), "ann", vec!["org=acme"], vec![]).await;
    let (bob, mut bob_pushes) = member(b.url.clone(), "bob", vec!["org=globex"], vec![]).await;
    assert!(matches!(ann.request(subscribe()).await, Ok(ServerMessage::Subscribe(_))));
    assert!(matches!(bob.request(subscribe()).await, Ok(ServerMessage::Subscribe(_))));
    let (carl, _c) = member(a.url.clone(), "carl", vec!["org=acme"], vec![]).await;
    let (gina, _g) = member(a.url.clone(), "gina", vec!["org=globex"], vec![]).await;
    let (admin, _ad) = member(a.url.clone(), "root", vec![], vec!["admin"]).await;
    let create = |org: &str, name: &str| tidings_protocol::Create {
        resource_type: tidings_protocol::ResourceType::new("project").expect("type"),
        data: json!({ "orgId": org, "name": name }).as_object().cloned().expect("object"),
    };
    let id_of = |reply: Result<ServerMessage, tidings_client::ClientError>| match reply {
        Ok(ServerMessage::Create(resource)) => resource.id.into_string(),
        other => panic!("not created: {other:?}"),
    };
    let acme = id_of(carl.request(ClientMessage::Create(create("acme", "Rocket"))).await);
    let globex = id_of(gina.request(ClientMessage::Create(create("globex", "Magnet"))).await);
    assert_eq!(next_of(&mut ann_pushes).await, ("project_created".to_owned(), acme.clone(), None));
    // Bob's first event is his organization's project: Acme's never reached him.
    assert_eq!(next_of(&mut bob_pushes).await, ("project_created".to_owned(), globex.clone(), None));

    let moved = Update {
        resource_type: tidings_protocol::ResourceType::new("project").expect("type"),
        id: tidings_protocol::ResourceId::new(&acme).expect("id"),
        patch: json!({ "orgId": "globex" }).as_object().cloned().expect("object"),
        expected_version: None,
    };
    assert!(matches!(admin.request(ClientMessage::Update(moved)).await, Ok(ServerMessage::Update(_))));
    assert_eq!(next_of(&mut ann_pushes).await, ("project_left".to_owned(), acme.clone(), Some("Hidden".to_owned())));
    assert_eq!(next_of(&mut bob_pushes).await, ("project_updated".to_owned(), acme, None));
}
