//! The DNS parser on well-formed, cut and hostile messages.
use super::*;

const RESPONSE: u16 = 0x8180; // QR, RD, RA, NOERROR

fn header(flags: u16, qd: u16, an: u16) -> Vec<u8> {
    let mut m = vec![0x12, 0x34];
    for word in [flags, qd, an, 0, 0] {
        m.extend_from_slice(&word.to_be_bytes());
    }
    m
}

fn name(m: &mut Vec<u8>, dotted: &str) {
    for label in dotted.split('.').filter(|l| !l.is_empty()) {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.push(0);
}

fn question(m: &mut Vec<u8>, dotted: &str) {
    name(m, dotted);
    m.extend_from_slice(&[0, 1, 0, 1]); // A, IN
}

/// A record whose owner is already written by `owner`.
fn rr(m: &mut Vec<u8>, owner: impl FnOnce(&mut Vec<u8>), rtype: u16, ttl: u32, rdata: &[u8]) {
    owner(m);
    m.extend_from_slice(&rtype.to_be_bytes());
    m.extend_from_slice(&CLASS_IN.to_be_bytes());
    m.extend_from_slice(&ttl.to_be_bytes());
    m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    m.extend_from_slice(rdata);
}

fn ptr(offset: u16) -> impl FnOnce(&mut Vec<u8>) {
    move |m: &mut Vec<u8>| m.extend_from_slice(&(0xc000 | offset).to_be_bytes())
}

fn named(dotted: &str) -> impl FnOnce(&mut Vec<u8>) + '_ {
    move |m: &mut Vec<u8>| name(m, dotted)
}

/// What `header` and one `question` ask: id 0x1234, type A.
fn asked(name: &str) -> DnsQuery {
    DnsQuery {
        id: 0x1234,
        questions: vec![(name.into(), TYPE_A)],
    }
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

/// q A.Example → CNAME b.example (ttl 60) → A 1.2.3.4 (ttl 300), AAAA fd00::1 (ttl 30).
fn chain_message() -> Vec<u8> {
    let mut m = header(RESPONSE, 1, 3);
    question(&mut m, "A.Example");
    let cname_rdata_at = m.len() + 12; // after owner pointer (2) and the fixed fields (10)
    let mut target = Vec::new();
    target.push(1);
    target.push(b'b');
    target.extend_from_slice(&[0xc0, 14]); // "example" inside the question
    rr(&mut m, ptr(12), TYPE_CNAME, 60, &target);
    rr(
        &mut m,
        ptr(cname_rdata_at as u16),
        TYPE_A,
        300,
        &[1, 2, 3, 4],
    );
    let aaaa: Ipv6Addr = "fd00::1".parse().unwrap_or(Ipv6Addr::LOCALHOST);
    rr(&mut m, named("b.example"), TYPE_AAAA, 30, &aaaa.octets());
    m
}

fn fd00_1() -> IpAddr {
    IpAddr::V6("fd00::1".parse().unwrap_or(Ipv6Addr::LOCALHOST))
}

#[test]
fn plain_a_record() {
    let mut m = header(RESPONSE, 1, 1);
    question(&mut m, "api.sealwatch.test");
    rr(&mut m, ptr(12), TYPE_A, 300, &[10, 0, 0, 1]);
    let answer = parse_udp(&m);
    assert_eq!(
        answer,
        Ok(DnsAnswer {
            query: asked("api.sealwatch.test"),
            names: vec![("api.sealwatch.test".into(), vec![(v4(10, 0, 0, 1), 300)])],
            truncated: false,
        })
    );
}

#[test]
fn cname_chain_maps_every_name_with_the_smallest_ttl() {
    let answer = parse_udp(&chain_message());
    assert_eq!(
        answer,
        Ok(DnsAnswer {
            query: asked("a.example"),
            names: vec![
                (
                    "a.example".into(),
                    vec![(v4(1, 2, 3, 4), 60), (fd00_1(), 30)]
                ),
                (
                    "b.example".into(),
                    vec![(v4(1, 2, 3, 4), 300), (fd00_1(), 30)]
                ),
            ],
            truncated: false,
        })
    );
}

#[test]
fn records_off_the_question_chain_are_not_learned() {
    let mut m = header(RESPONSE, 1, 2);
    question(&mut m, "evil.test");
    rr(&mut m, named("api.bank.test"), TYPE_A, 300, &[6, 6, 6, 6]);
    rr(&mut m, ptr(12), TYPE_A, 300, &[7, 7, 7, 7]);
    let answer = parse_udp(&m).map(|a| a.names);
    assert_eq!(
        answer,
        Ok(vec![("evil.test".into(), vec![(v4(7, 7, 7, 7), 300)])])
    );
}

#[test]
fn duplicate_addresses_keep_the_longest_ttl() {
    let mut m = header(RESPONSE, 1, 2);
    question(&mut m, "a.test");
    rr(&mut m, ptr(12), TYPE_A, 10, &[1, 1, 1, 1]);
    rr(&mut m, ptr(12), TYPE_A, 20, &[1, 1, 1, 1]);
    assert_eq!(
        parse_udp(&m).map(|a| a.names),
        Ok(vec![("a.test".into(), vec![(v4(1, 1, 1, 1), 20)])])
    );
}

#[test]
fn ttl_with_top_bit_is_zero() {
    let mut m = header(RESPONSE, 1, 1);
    question(&mut m, "a.test");
    rr(&mut m, ptr(12), TYPE_A, 0x8000_0001, &[1, 1, 1, 1]);
    assert_eq!(
        parse_udp(&m).map(|a| a.names),
        Ok(vec![("a.test".into(), vec![(v4(1, 1, 1, 1), 0)])])
    );
}

#[test]
fn only_noerror_responses_to_queries() {
    let mut m = header(0x0100, 1, 0);
    question(&mut m, "a.test");
    assert_eq!(parse_udp(&m), Err(DnsError::NotResponse));
    m[2..4].copy_from_slice(&0x8183u16.to_be_bytes()); // NXDOMAIN
    assert_eq!(parse_udp(&m), Err(DnsError::Rcode(3)));
    m[2..4].copy_from_slice(&0xa800u16.to_be_bytes()); // opcode 5 (UPDATE)
    assert_eq!(parse_udp(&m), Err(DnsError::Opcode(5)));
}

#[test]
fn cut_messages_keep_their_complete_records() {
    let full = chain_message();
    let full_answer = parse_udp(&full);
    let mut question_end = HEADER_LEN;
    while full[question_end] != 0 {
        question_end += 1;
    }
    question_end += 5;
    for len in 0..full.len() {
        let result = parse_udp(&full[..len]);
        if len < question_end {
            assert_eq!(result, Err(DnsError::Truncated), "cut at {len}");
        } else {
            let answer = result.unwrap_or_default();
            assert!(answer.truncated, "cut at {len}");
        }
    }
    // Cut inside the AAAA record: the CNAME and the A survive.
    let answer = parse_udp(&full[..full.len() - 1]);
    assert_eq!(
        answer,
        Ok(DnsAnswer {
            query: asked("a.example"),
            names: vec![
                ("a.example".into(), vec![(v4(1, 2, 3, 4), 60)]),
                ("b.example".into(), vec![(v4(1, 2, 3, 4), 300)]),
            ],
            truncated: true,
        })
    );
    assert!(full_answer.is_ok_and(|a| !a.truncated));
}

#[test]
fn huge_answer_count_is_bounded_by_the_bytes() {
    let mut m = header(RESPONSE, 1, u16::MAX);
    question(&mut m, "a.test");
    rr(&mut m, ptr(12), TYPE_A, 5, &[1, 1, 1, 1]);
    assert_eq!(
        parse_udp(&m),
        Ok(DnsAnswer {
            query: asked("a.test"),
            names: vec![("a.test".into(), vec![(v4(1, 1, 1, 1), 5)])],
            truncated: true,
        })
    );
}

#[test]
fn pointers_must_point_backwards() {
    // Question name is a pointer to itself.
    let mut m = header(RESPONSE, 1, 0);
    m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
    assert_eq!(parse_udp(&m), Err(DnsError::BadPointer(12)));
    // Forward, and beyond the end.
    let mut m = header(RESPONSE, 1, 0);
    m.extend_from_slice(&[0xc0, 14, 0, 0, 1, 0, 1]);
    assert_eq!(parse_udp(&m), Err(DnsError::BadPointer(12)));
    let mut m = header(RESPONSE, 1, 0);
    m.extend_from_slice(&[0xff, 0xff, 0, 1, 0, 1]);
    assert_eq!(parse_udp(&m), Err(DnsError::BadPointer(12)));
    // A loop between two answer names: 1 → 2 → 1.
    let mut m = header(RESPONSE, 1, 1);
    question(&mut m, "a.test");
    let at = m.len() as u16;
    m.extend_from_slice(&[1, b'x', 0xc0, (at + 4) as u8, 0xc0, at as u8]);
    assert!(matches!(parse_udp(&m), Err(DnsError::BadPointer(_))));
}

#[test]
fn pointer_chains_are_capped() {
    // An unknown record's data holds 100 pointers, each to the one before it (strictly
    // backwards, so allowed one by one); the next record's owner points at the last.
    let mut m = header(RESPONSE, 1, 2);
    question(&mut m, "a.test");
    let rdata_at = (m.len() + 12) as u16;
    let chain: Vec<u8> = (0..100u16)
        .flat_map(|i| {
            let target = if i == 0 { 12 } else { rdata_at + 2 * (i - 1) };
            (0xc000 | target).to_be_bytes()
        })
        .collect();
    rr(&mut m, ptr(12), 99, 5, &chain);
    rr(&mut m, ptr(rdata_at + 2 * 99), TYPE_A, 5, &[1, 1, 1, 1]);
    assert!(matches!(parse_udp(&m), Err(DnsError::TooManyPointers(_))));
}

#[test]
fn long_labels_and_names_are_rejected() {
    let mut m = header(RESPONSE, 1, 0);
    m.push(64);
    m.extend_from_slice(&[b'a'; 64]);
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    assert_eq!(parse_udp(&m), Err(DnsError::BadLabel(12)));
    let mut m = header(RESPONSE, 1, 0);
    for _ in 0..5 {
        m.push(63);
        m.extend_from_slice(&[b'a'; 63]);
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    assert_eq!(parse_udp(&m), Err(DnsError::NameTooLong(12)));
}

#[test]
fn record_data_must_fit_its_type() {
    let mut m = header(RESPONSE, 1, 1);
    question(&mut m, "a.test");
    rr(&mut m, ptr(12), TYPE_A, 5, &[1, 1, 1, 1, 1]);
    assert!(matches!(parse_udp(&m), Err(DnsError::BadRecordData(_))));
    let mut m = header(RESPONSE, 1, 1);
    question(&mut m, "a.test");
    let mut rdata = Vec::new();
    name(&mut rdata, "b.test");
    rdata.push(7); // a byte after the name, inside rdlength
    rr(&mut m, ptr(12), TYPE_CNAME, 5, &rdata);
    assert!(matches!(parse_udp(&m), Err(DnsError::BadRecordData(_))));
}

#[test]
fn cname_loops_end() {
    let mut m = header(RESPONSE, 1, 2);
    question(&mut m, "a.test");
    rr(&mut m, named("a.test"), TYPE_CNAME, 5, &{
        let mut t = Vec::new();
        name(&mut t, "b.test");
        t
    });
    rr(&mut m, named("b.test"), TYPE_CNAME, 5, &{
        let mut t = Vec::new();
        name(&mut t, "a.test");
        t
    });
    assert_eq!(parse_udp(&m).map(|a| a.names), Ok(vec![]));
}

#[test]
fn odd_label_bytes_are_escaped() {
    let mut m = header(RESPONSE, 1, 1);
    m.extend_from_slice(&[
        5, b'a', b'.', b'B', b' ', 0xff, 4, b't', b'e', b's', b't', 0,
    ]);
    m.extend_from_slice(&[0, 1, 0, 1]);
    rr(&mut m, ptr(12), TYPE_A, 5, &[1, 1, 1, 1]);
    assert_eq!(
        parse_udp(&m).map(|a| a.names),
        Ok(vec![(
            "a\\046b\\032\\255.test".into(),
            vec![(v4(1, 1, 1, 1), 5)]
        )])
    );
}

#[test]
fn tcp_framing() {
    let msg = chain_message();
    let mut framed = (msg.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&msg);
    framed.extend_from_slice(&[0xde, 0xad]); // the start of the next message
    assert_eq!(parse_tcp(&framed), parse_udp(&msg));
    // The capture cut the stream: the length says more than there is.
    let cut = &framed[..framed.len() - 3];
    assert!(parse_tcp(cut).is_ok_and(|a| a.truncated && !a.is_empty()));
    assert_eq!(parse_tcp(&[0]), Err(DnsError::NoLengthPrefix));
    assert_eq!(parse_tcp(&[0, 0]), Err(DnsError::Truncated));
}

#[test]
fn long_chains_with_many_addresses_are_capped() {
    // q → c1 → ... → c40, and 200 A records on c40: 41 names × 200 addresses.
    let mut m = header(RESPONSE, 1, 240);
    question(&mut m, "q.test");
    for i in 0..40 {
        let owner = if i == 0 {
            "q.test".to_owned()
        } else {
            format!("c{i}.test")
        };
        let mut target = Vec::new();
        name(&mut target, &format!("c{}.test", i + 1));
        rr(&mut m, named(&owner), TYPE_CNAME, 60, &target);
    }
    let mut last = Vec::new();
    name(&mut last, "c40.test");
    for i in 0..200u8 {
        rr(
            &mut m,
            |m: &mut Vec<u8>| m.extend_from_slice(&last),
            TYPE_A,
            60,
            &[10, 0, 1, i],
        );
    }
    let pairs: usize = parse_tcp(&[&(m.len() as u16).to_be_bytes()[..], &m].concat())
        .map(|a| a.names.iter().map(|(_, addrs)| addrs.len()).sum())
        .unwrap_or(0);
    assert_eq!(pairs, MAX_PAIRS);
}

/// Random and mutated messages: no panic, and always quick.
#[test]
fn hostile_bytes_never_panic() {
    let mut seed: u64 = 0x5ea1_u64;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as u32
    };
    let base = chain_message();
    for _ in 0..20_000 {
        let mut m = base.clone();
        for _ in 0..(next() % 6 + 1) {
            let at = next() as usize % m.len();
            m[at] = next() as u8;
        }
        let len = next() as usize % (m.len() + 1);
        let _ = parse_udp(&m[..len]);
        let _ = parse_tcp(&m[..len]);
    }
    for _ in 0..2_000 {
        let len = next() as usize % 1100;
        let mut m: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if m.len() > 3 {
            m[2] |= 0x80;
            m[3] &= 0xf0;
        }
        let _ = parse_udp(&m);
    }
}

#[test]
fn queries_give_their_id_and_questions() {
    let mut m = header(0x0100, 2, 0); // RD
    question(&mut m, "API.Sealwatch.test");
    name(&mut m, "v6.test");
    m.extend_from_slice(&[0, 28, 0, 1]); // AAAA, IN
    let expected = DnsQuery {
        id: 0x1234,
        questions: vec![
            ("api.sealwatch.test".into(), TYPE_A),
            ("v6.test".into(), TYPE_AAAA),
        ],
    };
    assert_eq!(parse_query(&m, false), Ok(expected.clone()));
    let mut tcp = (m.len() as u16).to_be_bytes().to_vec();
    tcp.extend_from_slice(&m);
    assert_eq!(parse_query(&tcp, true), Ok(expected));
    // A response is no query, and a query no response.
    let mut response = m.clone();
    response[2] |= 0x80;
    assert_eq!(parse_query(&response, false), Err(DnsError::NotQuery));
    assert_eq!(parse_udp(&m), Err(DnsError::NotResponse));
    assert_eq!(parse_query(&m[..11], false), Err(DnsError::Truncated));
}

#[test]
fn an_answer_names_the_query_it_answers_even_without_records() {
    let mut m = header(RESPONSE, 1, 0);
    question(&mut m, "a.test");
    let answer = parse_udp(&m);
    assert_eq!(
        answer.map(|a| (a.query, a.names.len())),
        Ok((asked("a.test"), 0))
    );
}
