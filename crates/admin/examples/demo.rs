//! Serves the admin page over a throwaway store with a few items, to try the page
//! by hand: `cargo run -p ferry-admin --example demo -- 127.0.0.1:6869 TOKEN`.

use ferry_admin::{AdminState, app, serve};
use ferry_crypto::{Keyring, StorageKey};
use ferry_http::{BearerToken, ServeOptions};
use ferry_protocol::{DataType, Serialization};
use ferry_store::{LocalOptions, LocalStore, NewItem, Store};

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:6869".into());
    let token = args.next().unwrap_or_else(|| "demo".into());
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(
        dir.path(),
        Keyring::new(StorageKey::generate(), Vec::new()),
        LocalOptions::default(),
    )
    .await
    .unwrap();
    let mut dict = serde_json::Map::new();
    dict.insert("name".into(), "Ferry".into());
    dict.insert(
        "nested".into(),
        serde_json::json!({"list": [1, 2, {"deep": true}], "empty": {}, "none": null}),
    );
    dict.insert("price".into(), serde_json::json!(12.5));
    let items: Vec<(DataType, Serialization, Option<&str>, Vec<u8>)> = vec![
        (
            DataType::Text,
            Serialization::Txt,
            Some("readme.txt"),
            b"Hello from Ferry.\nSecond line.\n".to_vec(),
        ),
        (
            DataType::Dictionary,
            Serialization::Json,
            Some("config.json"),
            ferry_codec::encode(Serialization::Json, &dict).unwrap(),
        ),
        (
            DataType::Dictionary,
            Serialization::Binary,
            None,
            ferry_codec::encode(Serialization::Binary, &dict).unwrap(),
        ),
        (
            DataType::Dictionary,
            Serialization::Xml,
            None,
            ferry_codec::encode(Serialization::Xml, &dict).unwrap(),
        ),
        (
            DataType::Text,
            Serialization::Txt,
            Some("big.log"),
            "a log line that repeats\n".repeat(20_000).into_bytes(),
        ),
    ];
    for (data_type, serialization, name, content) in items {
        let item = NewItem {
            data_type,
            serialization,
            encrypted_in_transit: true,
            peer: "10.0.0.7:41000".into(),
            name: name.map(Into::into),
        };
        let mut writer = store.begin(item).await.unwrap();
        for piece in content.chunks(48_000) {
            writer.write(piece).await.unwrap();
        }
        writer.commit().await.unwrap();
    }
    // Every few seconds a new item, to watch live updates arrive.
    let ticker = store.clone();
    tokio::spawn(async move {
        for n in 1.. {
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            let item = NewItem {
                data_type: DataType::Text,
                serialization: Serialization::Txt,
                encrypted_in_transit: false,
                peer: "10.0.0.9:50000".into(),
                name: Some(format!("tick-{n}.txt")),
            };
            let mut writer = ticker.begin(item).await.unwrap();
            writer
                .write(format!("tick {n}\n").as_bytes())
                .await
                .unwrap();
            writer.commit().await.unwrap();
        }
    });
    let state = AdminState {
        store: store.clone(),
        token: BearerToken::parse(&token).unwrap(),
        metrics: None,
        metrics_public: false,
    };
    let listener = std::net::TcpListener::bind(&addr).unwrap();
    eprintln!("serving on http://{addr}/");
    serve(
        listener,
        app(state),
        ServeOptions {
            tls: None,
            header_timeout: std::time::Duration::from_secs(30),
            drain: None,
        },
        async { tokio::signal::ctrl_c().await.unwrap_or(()) },
    )
    .await
    .unwrap();
}
