//! Matching answers to queries: id, questions, both ends, expiry, bounds, loopback.
use std::net::{IpAddr, Ipv4Addr};

use super::*;

const S: u64 = NS_PER_SEC;
const RESOLVER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 53));
const ME: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7));

fn query(id: u16, name: &str) -> Exchange {
    Exchange {
        tcp: false,
        ends: DnsEnds {
            local: ME,
            local_port: 40000,
            peer: RESOLVER,
            peer_port: 53,
        },
        id,
        questions: vec![(name.to_owned(), 1)],
    }
}

/// The answer a resolver gives to `query`: the same exchange, seen arriving.
fn answer_to(query: &Exchange) -> Exchange {
    query.clone()
}

#[test]
fn the_answer_to_a_query_matches_once() {
    let mut p = PendingQueries::default();
    let q = query(7, "a.test");
    p.sent("c", q.clone(), 0);
    assert_eq!(p.len(), 1);
    assert_eq!(p.answered("c", &answer_to(&q), 3, S), Ok(()));
    assert!(p.is_empty());
    // A second answer to the same query is one nobody is waiting for.
    assert_eq!(
        p.answered("c", &answer_to(&q), 3, S),
        Err(Rejection::Unsolicited)
    );
}

#[test]
fn an_answer_without_a_query_is_unsolicited() {
    let mut p = PendingQueries::default();
    let q = query(7, "a.test");
    assert_eq!(p.answered("c", &q, 3, 0), Err(Rejection::Unsolicited));
    // Another container's query does not count, nor another id or another local port.
    p.sent("other", q.clone(), 0);
    assert_eq!(p.answered("c", &q, 3, 0), Err(Rejection::Unsolicited));
    p.sent("c", q.clone(), 0);
    let other_id = Exchange { id: 8, ..q.clone() };
    assert_eq!(
        p.answered("c", &other_id, 3, 0),
        Err(Rejection::Unsolicited)
    );
    let mut other_port = q.clone();
    other_port.ends.local_port = 40001;
    assert_eq!(
        p.answered("c", &other_port, 3, 0),
        Err(Rejection::Unsolicited)
    );
    let tcp = Exchange { tcp: true, ..q };
    assert_eq!(p.answered("c", &tcp, 0, 0), Err(Rejection::Unsolicited));
}

#[test]
fn the_wrong_server_port_or_question_is_a_mismatch_and_the_query_still_waits() {
    let mut p = PendingQueries::default();
    let q = query(7, "allowed.test");
    p.sent("c", q.clone(), 0);
    let mut from_elsewhere = answer_to(&q);
    from_elsewhere.ends.peer = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 66));
    let mut other_server_port = answer_to(&q);
    other_server_port.ends.peer_port = 5353;
    let mut to_other_address = answer_to(&q);
    to_other_address.ends.local = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 8));
    let other_name = Exchange {
        questions: vec![("evil.test".into(), 1)],
        ..answer_to(&q)
    };
    let other_type = Exchange {
        questions: vec![("allowed.test".into(), 28)],
        ..answer_to(&q)
    };
    for forged in [
        from_elsewhere,
        other_server_port,
        to_other_address,
        other_name,
        other_type,
    ] {
        assert_eq!(
            p.answered("c", &forged, 3, S),
            Err(Rejection::Mismatch),
            "{forged:?}"
        );
    }
    assert_eq!(p.answered("c", &answer_to(&q), 3, S), Ok(()));
}

#[test]
fn loopback_and_own_address_answers_never_count() {
    let mut p = PendingQueries::default();
    // Even for a query that went to a loopback resolver.
    let mut to_loopback = query(1, "a.test");
    to_loopback.ends.peer = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut to_self = query(2, "a.test");
    to_self.ends.peer = ME;
    let mut v6 = query(3, "a.test");
    v6.ends.peer = "::1".parse().unwrap_or(RESOLVER);
    for q in [&to_loopback, &to_self, &v6] {
        p.sent("c", q.clone(), 0);
        assert_eq!(
            p.answered("c", &answer_to(q), 5, S),
            Err(Rejection::Loopback)
        );
    }
    // A matching answer that came in on the loopback device (a routed own address).
    let q = query(4, "a.test");
    p.sent("c", q.clone(), 0);
    assert_eq!(
        p.answered("c", &answer_to(&q), LOOPBACK_IFINDEX, S),
        Err(Rejection::Loopback)
    );
    assert_eq!(p.answered("c", &answer_to(&q), 2, S), Ok(()));
}

#[test]
fn queries_expire() {
    let mut p = PendingQueries::default();
    let q = query(7, "a.test");
    p.sent("c", q.clone(), 10 * S);
    assert_eq!(
        p.answered("c", &answer_to(&q), 3, 15 * S),
        Err(Rejection::Unsolicited),
        "5 s later the query no longer waits"
    );
    p.expire(15 * S);
    assert!(p.is_empty());
    // A retransmission waits anew, once.
    p.sent("c", q.clone(), 20 * S);
    p.sent("c", q.clone(), 24 * S);
    assert_eq!(p.len(), 1);
    p.expire(26 * S);
    assert_eq!(p.answered("c", &answer_to(&q), 3, 28 * S), Ok(()));
    assert_eq!(p.evicted(), 0, "expiry is no eviction");
}

#[test]
fn bounds_evict_the_oldest_of_the_largest_container_and_count_it() {
    let mut p = PendingQueries::new(PendingLimits {
        per_container: 4,
        total: 6,
        wait_ns: 5 * S,
    });
    for id in 0..5 {
        p.sent("flood", query(id, "a.test"), 0);
    }
    assert_eq!((p.len(), p.evicted()), (4, 1));
    assert_eq!(
        p.answered("flood", &query(0, "a.test"), 3, 0),
        Err(Rejection::Unsolicited),
        "the oldest went"
    );
    p.sent("quiet", query(100, "b.test"), 0);
    p.sent("quiet", query(101, "b.test"), 0);
    assert_eq!(p.len(), 6);
    // One more anywhere: the container with most waiting pays.
    p.sent("quiet", query(102, "b.test"), 0);
    assert_eq!((p.len(), p.evicted()), (6, 2));
    for id in 100..=102 {
        assert_eq!(p.answered("quiet", &query(id, "b.test"), 3, 0), Ok(()));
    }
    assert_eq!(p.answered("flood", &query(2, "a.test"), 3, 0), Ok(()));
    assert_eq!(
        p.answered("flood", &query(1, "a.test"), 3, 0),
        Err(Rejection::Unsolicited)
    );
    p.sent("flood", query(9, "a.test"), 0);
    p.forget_container("flood");
    assert!(p.is_empty());
}
