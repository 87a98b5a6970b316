//! Starting up: migrations are safe when several replicas start at once.

use wowchat_users_server::db;

#[tokio::test]
async fn several_replicas_migrating_one_new_database_at_once_all_succeed() {
    let name = format!("wowchat_test_{}", uuid::Uuid::new_v4().simple());
    let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
    let replicas = (0..4).map(|_| {
        let url = url.clone();
        tokio::spawn(async move {
            db::ensure_database(&url).await?;
            db::migrate(&url).await
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
