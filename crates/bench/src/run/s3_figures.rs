//! The S3 store's figures (issue #10, item 9), each beside what the same S3
//! server does for a plain `object_store` client in the same run: small
//! dictionaries over many connections against the server's rate of sequential
//! small PUTs, a big transfer against a plain multipart upload of the same
//! bytes (and the server's peak RSS during it), and how soon a second server
//! on the same bucket lists what the first stored.
//!
//! Each phase writes under a fresh folder of the bucket, deleted when the
//! phase ends; moto's server, when the bench started it, is stopped at the end.

use super::{Bench, Sizes, mib, progress, size};
use crate::procs::{RssTrace, Server};
use crate::report::{Report, Target, number};
use crate::s3::{self, S3Server};
use crate::{Rate, tcp};
use anyhow::{Context, Result};
use ferry_store::S3Options;
use object_store::ObjectStore;
use object_store::path::Path as ObjectPath;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const S3: &str = "S3 store";

/// The S3 server, a client of it, and what names this run's folders.
struct OnS3 {
    server: S3Server,
    objects: Box<dyn ObjectStore>,
    run: String,
}

impl OnS3 {
    /// A fresh folder of the bucket for one phase.
    fn folder(&self, phase: &str) -> ObjectPath {
        ObjectPath::from(format!(
            "{}/{}-{phase}",
            self.server.endpoint.prefix, self.run
        ))
    }

    /// `--store s3://BUCKET/FOLDER`.
    fn store_flag(&self, folder: &ObjectPath) -> String {
        format!("s3://{}/{folder}", self.server.endpoint.bucket)
    }
}

impl Bench<'_> {
    /// Every S3 figure, on moto's server started here or on the plan's.
    pub(super) async fn s3_figures(&mut self, sizes: &Sizes, report: &mut Report) -> Result<()> {
        let server = match &self.plan.s3 {
            Some(endpoint) => S3Server::external(endpoint.clone()),
            None => {
                progress("S3: starting moto's server (objects in memory)".into());
                S3Server::moto().await?
            }
        };
        report.notes.push(match server.is_moto() {
            true => "the S3 store's figures are measured against moto's S3 server (Python, objects in memory), started for the run on this machine".into(),
            false => format!(
                "the S3 store's figures are measured against the S3 server of AWS_ENDPOINT_URL, bucket {}",
                server.endpoint.bucket
            ),
        });
        let objects = Box::new(server.endpoint.client()?);
        let run = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis()
            .to_string();
        let s3 = OnS3 {
            server,
            objects,
            run,
        };
        // Dropped when the figures are done or one fails: moto stops, its objects gone.
        self.s3_phases(sizes, report, &s3).await
    }

    async fn s3_phases(&mut self, sizes: &Sizes, report: &mut Report, s3: &OnS3) -> Result<()> {
        self.s3_dict_figures(sizes, report, s3).await?;
        self.s3_transfer_figures(sizes, report, s3).await?;
        self.s3_visibility_figures(sizes, report, s3).await
    }

    /// The S3 server's sequential small PUTs, then small dictionaries over
    /// many connections to a server on S3.
    async fn s3_dict_figures(
        &mut self,
        sizes: &Sizes,
        report: &mut Report,
        s3: &OnS3,
    ) -> Result<()> {
        let n = sizes.connections;
        let secs = sizes.s3_puts.as_secs_f64();
        progress(format!(
            "S3: sequential {}-byte PUTs for {secs} s (object_store)",
            s3::SMALL_OBJECT
        ));
        let folder = s3.folder("puts");
        let puts = s3::put_rate(&*s3.objects, &folder, sizes.s3_puts).await;
        s3::clear(&*s3.objects, &folder).await?;
        let puts = puts?;

        // The commit log's group commits alone (issue #7's figure), then with
        // each server's signed log (its leaves in the same objects, copied
        // into the log's own objects in the background, and a receipt signed).
        progress(format!(
            "S3: small dictionaries, {n} connections, signed log off"
        ));
        let dicts = self.s3_dicts(sizes, s3, &["--tlog", "false"]).await?;
        progress(format!(
            "S3: small dictionaries, {n} connections, signed log on"
        ));
        let logged = self.s3_dicts(sizes, s3, &[]).await?;
        report.push(
            S3,
            format!(
                "the S3 server alone: {}-byte PUTs one after another (object_store)",
                s3::SMALL_OBJECT
            ),
            puts.per_sec(),
            "PUTs/s",
            Target::None,
        );
        report.push(
            S3,
            format!(
                "small JSON dicts, {n} connections, store on S3, signed log off (--tlog false)"
            ),
            dicts.per_sec(),
            "dicts/s",
            Target::AtLeast {
                value: 10.0 * puts.per_sec(),
                why: format!("10× the {} PUTs/s", number(puts.per_sec())),
            },
        );
        report.push(
            S3,
            "those dicts/s / sequential PUTs/s (group commits)",
            dicts.per_sec() / puts.per_sec(),
            "×",
            Target::AtLeast {
                value: 10.0,
                why: "fixed".into(),
            },
        );
        report.push(
            S3,
            format!("small JSON dicts, {n} connections, store on S3, signed log on (receipts)"),
            logged.per_sec(),
            "dicts/s",
            Target::None,
        );
        report.push(
            S3,
            "those dicts/s / sequential PUTs/s",
            logged.per_sec() / puts.per_sec(),
            "×",
            Target::None,
        );
        Ok(())
    }

    /// A plain multipart upload, then the same bytes sent to a server on S3,
    /// with that server's RSS.
    async fn s3_transfer_figures(
        &mut self,
        sizes: &Sizes,
        report: &mut Report,
        s3: &OnS3,
    ) -> Result<()> {
        let len = sizes.transfer_bytes;
        let one = size(len);
        let options = S3Options::default();
        let (part, concurrency) = (options.part_size, options.upload_concurrency);
        progress(format!(
            "S3: plain multipart upload of {one} (object_store, {part}-byte parts, {concurrency} at once)"
        ));
        let folder = s3.folder("multipart");
        let plain = s3::multipart(
            &*s3.objects,
            &folder.clone().join("bench.txt"),
            len,
            part,
            concurrency,
        )
        .await;
        s3::clear(&*s3.objects, &folder).await?;
        let plain = plain?;
        progress(format!("S3: {one} plain transfer to a server on S3"));
        let (ferry, trace) = self.s3_transfer(len, s3).await?;
        report.push(
            S3,
            format!("{one} text, plain, over TCP to a server on S3"),
            ferry.mb_per_sec(),
            "MB/s",
            Target::AtLeast {
                value: 0.8 * plain.mb_per_sec(),
                why: format!("0.8 of the plain upload's {}", number(plain.mb_per_sec())),
            },
        );
        report.push(
            S3,
            format!(
                "vs. a plain multipart upload of the same {one} (object_store, {part}-byte parts, {concurrency} at once), just before"
            ),
            plain.mb_per_sec(),
            "MB/s",
            Target::None,
        );
        report.push(
            S3,
            "transfer to a server on S3 / plain multipart upload",
            ferry.mb_per_sec() / plain.mb_per_sec(),
            "×",
            Target::AtLeast {
                value: 0.8,
                why: "fixed".into(),
            },
        );
        // Flat: what the upload buffers (a part being filled, the parts in
        // flight) is reached early; nothing grows with the item after that.
        let (early, peak) = (mib(trace.peak_by(0.25)), mib(trace.peak()));
        report.push(
            S3,
            format!("server peak RSS during that {one} transfer"),
            peak,
            "MiB",
            Target::Below {
                value: early + 8.0,
                why: format!(
                    "flat: within 8 MiB of its {} MiB after the first quarter of the time",
                    number(early)
                ),
            },
        );
        Ok(())
    }

    /// How soon a second server on the bucket lists what the first stored.
    async fn s3_visibility_figures(
        &mut self,
        sizes: &Sizes,
        report: &mut Report,
        s3: &OnS3,
    ) -> Result<()> {
        let options = S3Options::default();
        let count = sizes.visibility_items;
        let poll = options.poll_interval.as_millis();
        progress(format!(
            "S3: {count} small dictionaries to one server, each until a second one lists it"
        ));
        let lags = self.s3_visibility(count, options.poll_interval, s3).await?;
        for percent in [50, 99] {
            report.push(
                S3,
                format!(
                    "p{percent}: from one server's OK until another on the bucket lists the item ({count} items, polling every {poll} ms)"
                ),
                s3::percentile(&lags, percent).as_secs_f64() * 1000.0,
                "ms",
                Target::Below {
                    value: 1000.0,
                    why: "the issue's aim: 1 s".into(),
                },
            );
        }
        Ok(())
    }

    /// A fresh server whose store is `folder` of the bucket.
    async fn s3_server(
        &mut self,
        s3: &OnS3,
        folder: &ObjectPath,
        extra: &[&str],
    ) -> Result<Server> {
        self.started += 1;
        let store = s3.store_flag(folder);
        let mut args = vec!["--store", store.as_str()];
        args.extend_from_slice(extra);
        Server::start_env(
            &self.plan.bin_dir,
            self.dir.join(format!("server-{}", self.started)),
            &args,
            &s3.server.endpoint.env,
        )
        .await
    }

    /// Small dictionaries over many connections to a server on S3.
    async fn s3_dicts(&mut self, sizes: &Sizes, s3: &OnS3, extra: &[&str]) -> Result<Rate> {
        self.phase = "S3 dictionaries";
        let folder = s3.folder("dicts");
        let rate = async {
            let server = self.s3_server(s3, &folder, extra).await?;
            let rate = tcp::dict_rate(server.tcp(), sizes.connections, sizes.dict_multi).await;
            self.retire(server).await?;
            rate
        }
        .await;
        s3::clear(&*s3.objects, &folder).await?;
        rate
    }

    /// One plain transfer to a server on S3: its rate and the server's peak
    /// RSS through it.
    async fn s3_transfer(&mut self, len: u64, s3: &OnS3) -> Result<(Rate, RssTrace)> {
        self.phase = "S3 transfer";
        let folder = s3.folder("transfer");
        let outcome = async {
            let server = self.s3_server(s3, &folder, &[]).await?;
            let (rate, trace) =
                RssTrace::during(&server.process, tcp::transfer(server.tcp(), None, len)).await;
            self.retire(server).await?;
            anyhow::Ok((rate?, trace))
        }
        .await;
        s3::clear(&*s3.objects, &folder).await?;
        outcome
    }

    /// Two servers on one folder with the same keys: each lag from the
    /// first's `OK` until the second lists the item.
    async fn s3_visibility(
        &mut self,
        count: u64,
        poll: Duration,
        s3: &OnS3,
    ) -> Result<Vec<Duration>> {
        self.phase = "S3 visibility";
        let folder = s3.folder("visibility");
        let keys = self.dir.join("s3-keys");
        std::fs::create_dir_all(&keys).with_context(|| format!("creating {}", keys.display()))?;
        let storage_key = keys.join("storage.key");
        let fernet_key = keys.join("fernet.key");
        let shared = [
            "--storage-key",
            storage_key.to_str().context("non-UTF-8 work dir")?,
            "--fernet-key",
            fernet_key.to_str().context("non-UTF-8 work dir")?,
        ];
        let outcome = async {
            // One after the other: the first creates both keys, the second reads them.
            let first = self.s3_server(s3, &folder, &shared).await?;
            let second = async {
                let mut flags = shared.to_vec();
                // Its listing is read every few milliseconds.
                flags.extend_from_slice(&["--admin-rate-limit", "0"]);
                self.s3_server(s3, &folder, &flags).await
            }
            .await;
            let lags = match &second {
                Ok(second) => {
                    async {
                        let token = second.admin_token()?;
                        s3::visibility(first.tcp(), &second.admin_url(), &token, count, poll).await
                    }
                    .await
                }
                Err(_) => Ok(Vec::new()),
            };
            self.retire(first).await?;
            let second = second?;
            self.retire(second).await?;
            lags
        }
        .await;
        let _ = std::fs::remove_dir_all(&keys);
        s3::clear(&*s3.objects, &folder).await?;
        outcome
    }
}
