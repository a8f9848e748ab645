//! The throwaway PostgreSQL cluster the PostgreSQL tests use starts, answers, stops and starts
//! again (the database-outage test relies on the last two).

mod support;

use support::pg::Pg;

#[test]
fn a_throwaway_cluster_starts_answers_and_restarts() {
    let pg = Pg::start();
    assert_eq!(pg.psql("select 1 + 1"), "2");
    pg.stop();
    pg.start_server();
    assert_eq!(pg.psql("select current_user"), "smppd");
}
