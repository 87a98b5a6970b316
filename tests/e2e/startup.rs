//! Starting up: migrations are safe when several replicas start at once.

use wowchat_users_server::db;

#[tokio::test]
async fn several_replicas_migrating_one_new_database_at_once_all_succeed() {
    let name = format!("wowchat_test_{}", uuid::Uuid::new_v4().simple());
    let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
    let replicas = (0..4).map(|_| {
        let url = url.clone();
        tokio::spawn(async move {
            db::SCHEMA.ensure_database(&url).await?;
            db::SCHEMA.migrate(&url).await
        })
    });
    let results = futures::future::join_all(replicas).await;

    let (admin, connection) = tokio_postgres::connect(
        "postgres://postgres@127.0.0.1:5432/postgres",
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let applied = async {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        let versions: i64 = client
            .query_one("SELECT count(*) FROM refinery_schema_history", &[])
            .await
            .unwrap()
            .get(0);
        let tables: i64 = client
            .query_one(
                "SELECT count(*) FROM information_schema.tables WHERE table_name IN ('users', 'invitations', 'outbox')",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        (versions, tables)
    }
    .await;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await
        .unwrap();

    for result in results {
        result.unwrap().unwrap();
    }
    let migrations = std::fs::read_dir(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/crates/server/migrations"
    ))
    .unwrap()
    .count() as i64;
    assert_eq!(applied, (migrations, 3), "each migration applied once");
}

#[cfg(unix)]
#[tokio::test]
async fn a_development_private_key_other_users_can_read_is_refused_at_start() {
    use std::os::unix::fs::PermissionsExt;
    use wowchat_users_server::{auth::JwtKeys, config::Settings, startup::Application};

    let dir = std::env::temp_dir().join(format!("wowchat-keys-{}", uuid::Uuid::new_v4().simple()));
    let mut settings = Settings::defaults();
    settings.dev_keys_dir = dir.join("dev-keys");
    settings.listen_addr = "127.0.0.1:0".parse().unwrap();
    // Never reached: the keys are checked before Postgres is touched.
    settings.database.url = "postgres://postgres@127.0.0.1:1/never".to_owned().into();
    let key = settings.dev_keys_dir.join("jwt-private.pem");
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;

    // Generated keys are the owner's alone.
    JwtKeys::load(&settings.key_settings()).unwrap();
    assert_eq!(mode(&key), 0o600);
    assert_eq!(mode(&settings.dev_keys_dir), 0o700);

    for exposed in [0o640, 0o604, 0o644] {
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(exposed)).unwrap();
        let error = match Application::build(settings.clone()).await {
            Ok(_) => panic!("a key with mode {exposed:o} must be refused"),
            Err(error) => format!("{error:#}"),
        };
        assert!(error.contains("accessible to other users"), "{error}");
        assert!(error.contains("chmod 600"), "{error}");
    }

    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    JwtKeys::load(&settings.key_settings()).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
