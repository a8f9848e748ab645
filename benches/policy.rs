//! The destination check every submit runs (`policy::number::check`: length and number type
//! from libphonenumber's metadata): a Swedish mobile (one region for the code), a US number
//! (+1 is shared by 25 regions, resolved by their patterns), a UK mobile (+44: four regions),
//! and an impossible number (refused on its length, no pattern run).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use smppd::policy::number;

fn bench(c: &mut Criterion) {
    let cases = [
        ("se_mobile", "+46701234567", Some("SE")),
        ("us_number", "+12025550123", Some("US")),
        ("gb_mobile", "+447700900123", Some("GB")),
        ("too_short", "+4670123", None),
    ];
    for (name, n, region) in cases {
        assert_eq!(number::check(n).ok().map(|i| i.region), region, "{n}");
        c.bench_function(&format!("number_check/{name}"), |b| {
            b.iter(|| number::check(black_box(n)))
        });
    }
    // Many countries in turn: the patterns of every region a gateway sends to, not one.
    let mixed = [
        "+46701234567",
        "+12025550123",
        "+447700900123",
        "+4915123456789",
        "+33612345678",
        "+79161234567",
        "+919812345678",
        "+5511912345678",
        "+61412345678",
        "+8613812345678",
    ];
    c.bench_function("number_check/ten_countries_in_turn", |b| {
        b.iter(|| {
            for n in &mixed {
                let _ = black_box(number::check(black_box(n)));
            }
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
