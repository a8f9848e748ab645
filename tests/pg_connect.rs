//! Connecting to the shared store as `[store]` says: `sslmode` in the URL (TLS by rustls, checked
//! from the server's side in `pg_stat_ssl`; a certificate that cannot be verified refused under
//! `verify-full`), and the password from `password_file` or `PGPASSWORD`, never repeated in an
//! error.

mod support;

use support::pg::Pg;

fn postgres(url: String) -> smppd::config::Postgres {
    smppd::config::Postgres {
        url,
        password_file: None,
        pool_size: 2,
    }
}

/// Whether this connection is encrypted, as the server sees it.
async fn encrypted(url: String) -> Result<bool, String> {
    let pool =
        smppd::store::postgres::pool(&postgres(url), "tls test").map_err(|e| e.to_string())?;
    let c = pool.get().await.map_err(|e| format!("{e:?}"))?;
    let row = c
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(row.get(0))
}

#[tokio::test]
async fn sslmode_in_the_url_chooses_tls_and_verify_full_checks_the_certificate() {
    let pg = Pg::start();
    let ca = pg.enable_tls();
    let base = pg.url();
    assert_eq!(
        encrypted(base.clone()).await,
        Ok(false),
        "no sslmode: plain"
    );
    assert_eq!(
        encrypted(format!("{base}?sslmode=require")).await,
        Ok(true),
        "require: encrypted"
    );
    assert_eq!(
        encrypted(format!(
            "{base}?sslmode=verify-full&sslrootcert={}",
            ca.display()
        ))
        .await,
        Ok(true),
        "verify-full with the server's CA"
    );
    let refused = encrypted(format!("{base}?sslmode=verify-full")).await;
    let why = refused.expect_err("verify-full without the CA must fail");
    assert!(
        why.to_lowercase().contains("certificate") || why.contains("UnknownIssuer"),
        "{why}"
    );
}

#[tokio::test]
async fn the_password_comes_from_password_file_and_never_shows_in_an_error() {
    let pg = Pg::start();
    pg.add_password_role("gateway", "s3cret-Pa55");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("pgpass");
    let url = format!("postgres://gateway@127.0.0.1:{}/smppd", pg.port);
    let connect = |password_file: Option<std::path::PathBuf>| {
        let pg = smppd::config::Postgres {
            url: url.clone(),
            password_file,
            pool_size: 2,
        };
        async move {
            let pool =
                smppd::store::postgres::pool(&pg, "password test").map_err(|e| e.to_string())?;
            let c = pool.get().await.map_err(|e| format!("{e} / {e:?}"))?;
            let row = c
                .query_one("SELECT current_user::text", &[])
                .await
                .map_err(|e| e.to_string())?;
            Ok::<String, String>(row.get(0))
        }
    };
    std::fs::write(&file, "s3cret-Pa55\n").expect("write pgpass");
    assert_eq!(connect(Some(file.clone())).await, Ok("gateway".to_owned()));
    std::fs::write(&file, "wrong-Pa55\n").expect("write pgpass");
    let err = connect(Some(file.clone()))
        .await
        .expect_err("a wrong password is refused");
    assert!(err.contains("password authentication failed"), "{err}");
    assert!(
        !err.contains("wrong-Pa55") && !err.contains("s3cret"),
        "{err}"
    );
    // The daemon's own error on a wrong password names the database but not the password.
    let conf = dir.path().join("smppd.toml");
    std::fs::write(
        &conf,
        format!(
            "[listen]\nsubmit = \"127.0.0.1:0\"\n[store]\nurl = \"{url}\"\npassword_file = \"pgpass\"\n\
             [[smsc]]\nname = \"op\"\naddress = \"127.0.0.1:9\"\nsystem_id = \"x\"\npassword = \"x\"\n\
             [[route]]\nname = \"r\"\nsmsc = [\"op\"]\n"
        ),
    )
    .expect("write config");
    let out = support::smppd(&["store", "migrate", "--config", &conf.display().to_string()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{out:?}");
    assert!(
        stderr.contains("127.0.0.1") && !stderr.contains("wrong-Pa55"),
        "{stderr}"
    );
}
