use super::*;

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

fn cfg(port: u16, seeds: &[u16]) -> MemberlistConfig {
    MemberlistConfig {
        join_members: seeds.iter().map(|p| format!("127.0.0.1:{p}")).collect(),
        bind_addr: "127.0.0.1".into(),
        bind_port: port,
        gossip_interval: ConfigDuration(Duration::from_millis(50)),
        heartbeat_period: ConfigDuration(Duration::from_millis(100)),
        heartbeat_timeout: ConfigDuration(Duration::from_secs(2)),
        ..MemberlistConfig::default()
    }
}

fn local(id: &str, role: &str) -> LocalMember {
    LocalMember {
        id: id.into(),
        roles: vec![role.into()],
        grpc_addr: format!("127.0.0.1:9{}", id.len()),
        http_addr: String::new(),
        tokens: 128,
        state: MemberState::Joining,
    }
}

/// Waits (bounded) until `cond` holds for `m`'s member list.
async fn until(m: &Membership, what: &str, cond: impl Fn(&[Member]) -> bool) -> Vec<Member> {
    for _ in 0..200 {
        let members = m.members().await;
        if cond(&members) {
            return members;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}: {:?}", m.members().await);
}

#[tokio::test]
async fn members_find_each_other_and_see_state_changes_and_failures() {
    let ports = [free_udp_port(), free_udp_port(), free_udp_port()];
    let a = Membership::start(&cfg(ports[0], &[]), local("ing-a", "ingester"))
        .await
        .unwrap();
    let b = Membership::start(&cfg(ports[1], &[ports[0]]), local("ing-b", "ingester"))
        .await
        .unwrap();
    let d = Membership::start(&cfg(ports[2], &[ports[0]]), local("dist", "distributor"))
        .await
        .unwrap();
    let seen = until(&d, "three members with their keys", |m| {
        // Keys arrive before the failure detector has seen a member's heartbeats: wait for both.
        m.len() == 3 && m.iter().all(|x| !x.roles.is_empty() && x.tokens > 0 && x.healthy())
    })
    .await;
    assert_eq!(
        seen.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        ["dist", "ing-a", "ing-b"]
    );
    assert!(seen.iter().filter(|m| m.has_role("ingester")).count() == 2);
    assert_eq!(seen[1].grpc_addr, "127.0.0.1:95");
    assert!(seen.iter().all(|m| m.state == MemberState::Joining && m.tokens == 128));

    a.set_state(MemberState::Active).await;
    until(&d, "ing-a ACTIVE", |m| {
        m.iter().any(|x| x.id == "ing-a" && x.state == MemberState::Active)
    })
    .await;

    // A member that stops gossiping turns UNHEALTHY; then it can be forgotten.
    assert!(d.forget("ing-b").await.is_err(), "healthy members are not forgotten");
    b.shutdown().await;
    until(&d, "ing-b UNHEALTHY", |m| {
        m.iter().any(|x| x.id == "ing-b" && x.state == MemberState::Unhealthy)
    })
    .await;
    d.forget("ing-b").await.unwrap();
    until(&a, "ing-b forgotten everywhere", |m| m.iter().all(|x| x.id != "ing-b")).await;

    // It comes back with a new generation and is seen again.
    let b2 = Membership::start(&cfg(ports[1], &[ports[0]]), local("ing-b", "ingester"))
        .await
        .unwrap();
    until(&d, "ing-b back", |m| m.iter().any(|x| x.id == "ing-b" && x.healthy())).await;
    for m in [&a, &b2, &d] {
        m.shutdown().await;
    }
}

#[tokio::test]
async fn a_static_list_needs_no_gossip() {
    let c = MemberlistConfig {
        static_members: vec![StaticMember {
            id: "ing-1".into(),
            roles: vec!["ingester".into()],
            grpc_addr: "10.0.0.1:9095".into(),
            http_addr: String::new(),
            tokens: 64,
        }],
        ..MemberlistConfig::default()
    };
    let m = Membership::start(&c, local("q", "querier")).await.unwrap();
    let members = m.members().await;
    assert_eq!(members.len(), 1);
    assert_eq!((members[0].state, members[0].tokens), (MemberState::Active, 64));
    assert!(m.gossip_addr().is_none());
    assert!(m.forget("ing-1").await.is_err());
}

#[test]
fn config_is_checked() {
    assert!(MemberlistConfig::default().validate().is_ok());
    let bad = MemberlistConfig {
        heartbeat_timeout: ConfigDuration::secs(1),
        ..MemberlistConfig::default()
    };
    assert!(bad.validate().is_err());
}
