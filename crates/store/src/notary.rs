//! The [`Notary`]: signs a store's log. It issues each stored item's receipt,
//! publishes signed checkpoints at a bounded interval (saved in the store, so
//! that the next start checks the leaves against the last one), serves the
//! proofs, and checks the log (at start and on demand): a changed, removed or
//! reordered leaf makes the check fail, and the notary then publishes no
//! checkpoint until the log is repaired (restored from a backup).

use std::sync::Arc;
use std::time::Duration;

use ferry_tlog::{Checkpoint, ConsistencyProof, InclusionProof, Receipt, Signer, Verifier};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::{ItemMeta, Ledger, StoreError, stored_entry};

/// A published checkpoint: its size and signed note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The tree size.
    pub size: u64,
    /// The signed note.
    pub note: String,
}

/// What a check of the log found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LogCheck {
    /// Whether the leaves on disk match the last signed checkpoint and the
    /// tree in memory.
    pub ok: bool,
    /// The leaves read.
    pub size: u64,
    /// The size of the checkpoint checked against, if there was one.
    pub checkpoint_size: Option<u64>,
    /// What is wrong; empty when `ok`.
    pub problems: Vec<String>,
}

/// Signs a store's log. See the module docs of `notary.rs`.
pub struct Notary {
    signer: Signer,
    ledger: Arc<dyn Ledger>,
    /// The last checkpoint signed for receipts: reused by every receipt of a
    /// leaf it holds, so that a group commit costs one signature.
    for_receipts: tokio::sync::Mutex<Option<Published>>,
    published: watch::Sender<Option<Published>>,
    health: watch::Sender<LogCheck>,
}

impl std::fmt::Debug for Notary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notary")
            .field("log", &self.signer.name())
            .finish_non_exhaustive()
    }
}

impl Notary {
    /// The notary of `ledger` with `signer`: checks the log against the last
    /// checkpoint saved (logging loudly what is wrong) and publishes a first
    /// checkpoint if the check passes.
    ///
    /// # Errors
    /// A store error while reading the leaves.
    pub async fn start(signer: Signer, ledger: Arc<dyn Ledger>) -> Result<Arc<Notary>, StoreError> {
        let notary = Arc::new(Notary {
            signer,
            ledger,
            for_receipts: tokio::sync::Mutex::new(None),
            published: watch::channel(None).0,
            health: watch::channel(LogCheck {
                ok: true,
                size: 0,
                checkpoint_size: None,
                problems: Vec::new(),
            })
            .0,
        });
        // The leaves the store read when it opened are checked as read; the
        // tree it took instead (if it did) against the last checkpoint, and its
        // leaves read again in the background.
        let check = notary.verify(false).await?;
        if check.ok {
            tracing::info!(leaves = check.size, checkpoint = ?check.checkpoint_size, "the store's log verifies against its last checkpoint");
            notary.publish().await?;
        }
        if !notary.ledger.read_at_open() {
            let notary = notary.clone();
            tokio::spawn(async move {
                match notary.check().await {
                    Ok(check) if check.ok => {
                        tracing::info!(
                            leaves = check.size,
                            "every leaf of the store's log, read again, verifies"
                        );
                    }
                    Ok(_) => {}
                    Err(err) => tracing::warn!(%err, "the check of the store's log did not finish"),
                }
            });
        }
        Ok(notary)
    }

    /// The public key that verifies receipts and checkpoints.
    #[must_use]
    pub fn verifier(&self) -> Verifier {
        self.signer.verifier()
    }

    /// The log's name (the checkpoints' origin).
    #[must_use]
    pub fn origin(&self) -> &str {
        self.signer.name()
    }

    /// The store's log.
    #[must_use]
    pub fn ledger(&self) -> &Arc<dyn Ledger> {
        &self.ledger
    }

    /// The receipt of a stored item: its leaf, a signed checkpoint that holds
    /// it and the leaf's inclusion proof. `None` if it has no leaf, or while
    /// the log does not verify (nothing is signed over it then).
    pub async fn receipt(&self, meta: &ItemMeta) -> Option<Receipt> {
        let index = meta.log_index?;
        if !self.health.borrow().ok {
            return None;
        }
        let holding = self.checkpoint_holding(index).await?;
        let proof = self.ledger.inclusion_proof(index, holding.size).ok()?;
        Receipt::new(
            self.origin(),
            index,
            &stored_entry(meta),
            holding.note,
            &proof,
        )
        .ok()
    }

    /// A signed checkpoint of more than `index` leaves: the last one signed for
    /// receipts if it holds that leaf, else a new one of the log as it is.
    /// One is signed at a time (the log synced, then signed): the receipts
    /// that wait meanwhile are of leaves it holds, so one signature serves
    /// every leaf committed while the one before was made, as a group commit.
    async fn checkpoint_holding(&self, index: u64) -> Option<Published> {
        let mut last = self.for_receipts.lock().await;
        if let Some(last) = last.as_ref().filter(|last| last.size > index) {
            return Some(last.clone());
        }
        let size = self.ledger.size();
        let note = self.sign(size).await.ok()?;
        let signed = Published { size, note };
        *last = Some(signed.clone());
        Some(signed)
    }

    /// The latest checkpoint published.
    #[must_use]
    pub fn latest(&self) -> Option<Published> {
        self.published.borrow().clone()
    }

    /// The last check's result.
    #[must_use]
    pub fn health(&self) -> LogCheck {
        self.health.borrow().clone()
    }

    /// Signs and saves a checkpoint of the log as it is, if it grew since the
    /// last one and the log checks; returns the latest published.
    ///
    /// # Errors
    /// The store's, saving the checkpoint.
    pub async fn publish(&self) -> Result<Option<Published>, StoreError> {
        let size = self.ledger.size();
        let latest = self.latest();
        if !self.health.borrow().ok || latest.as_ref().is_some_and(|p| p.size >= size) {
            return Ok(latest);
        }
        let note = self.sign(size).await?;
        self.ledger.save_checkpoint(&note).await?;
        let published = Published { size, note };
        self.published.send_replace(Some(published.clone()));
        metrics::gauge!("ferry_log_checkpoint_size").set(size as f64);
        Ok(Some(published))
    }

    /// Publishes every `interval` until `shutdown`.
    pub async fn publish_periodically(
        self: Arc<Self>,
        interval: Duration,
        shutdown: CancellationToken,
    ) {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                () = shutdown.cancelled() => break,
            }
            if let Err(err) = self.publish().await {
                tracing::error!(%err, "cannot publish a checkpoint of the store's log");
            }
        }
    }

    /// The signed checkpoint of the first `size` leaves, once they are durable.
    async fn sign(&self, size: u64) -> Result<String, StoreError> {
        self.ledger.sync().await?;
        let root = self.ledger.root(size)?;
        let checkpoint = Checkpoint::new(self.signer.name(), size, root)
            .map_err(|err| StoreError::InvalidLogRequest(err.to_string()))?;
        Ok(self.signer.sign_checkpoint(&checkpoint))
    }

    /// The checkpoint to prove against: of `size` if given (at most the
    /// latest published), else the latest published; waits up to `wait` for
    /// one that covers leaf `covering`.
    async fn checkpoint_for(
        &self,
        size: Option<u64>,
        covering: u64,
        wait: Duration,
    ) -> Result<Published, StoreError> {
        let mut published = self.published.subscribe();
        let deadline = tokio::time::Instant::now() + wait;
        let latest = loop {
            let latest = published.borrow_and_update().clone();
            match latest {
                Some(latest) if latest.size > covering || size.is_some() => break latest,
                _ => {}
            }
            if tokio::time::timeout_at(deadline, published.changed())
                .await
                .is_err()
            {
                return Err(StoreError::InvalidLogRequest(format!(
                    "leaf {covering} is not in a published checkpoint yet; try again in a moment"
                )));
            }
        };
        match size {
            None => Ok(latest),
            Some(size) if size == latest.size => Ok(latest),
            Some(size) if size < latest.size => Ok(Published {
                size,
                note: self.sign(size).await?,
            }),
            Some(size) => Err(StoreError::InvalidLogRequest(format!(
                "no checkpoint of {size} leaves has been published (the latest has {})",
                latest.size
            ))),
        }
    }

    /// The inclusion proof of leaf `index` in the tree of a published
    /// checkpoint (see `checkpoint_for`).
    ///
    /// # Errors
    /// [`StoreError::InvalidLogRequest`] for an index or size the log cannot
    /// prove.
    pub async fn inclusion(
        &self,
        index: u64,
        size: Option<u64>,
        wait: Duration,
    ) -> Result<InclusionProof, StoreError> {
        if index >= self.ledger.size() {
            return Err(StoreError::InvalidLogRequest(format!(
                "the log has no leaf {index}"
            )));
        }
        let published = self.checkpoint_for(size, index, wait).await?;
        let proof = self.ledger.inclusion_proof(index, published.size)?;
        Ok(InclusionProof::new(
            index,
            published.size,
            &proof,
            published.note,
        ))
    }

    /// The consistency proof from the tree of `from` leaves to that of a
    /// published checkpoint (`to`, or the latest).
    ///
    /// # Errors
    /// [`StoreError::InvalidLogRequest`] for sizes the log cannot prove.
    pub async fn consistency(
        &self,
        from: u64,
        to: Option<u64>,
    ) -> Result<ConsistencyProof, StoreError> {
        let latest = self.latest().ok_or_else(|| {
            StoreError::InvalidLogRequest("no checkpoint has been published yet".into())
        })?;
        let published = self
            .checkpoint_for(to.or(Some(latest.size)), 0, Duration::ZERO)
            .await?;
        let proof = self.ledger.consistency_proof(from, published.size)?;
        Ok(ConsistencyProof::new(
            from,
            published.size,
            &proof,
            published.note,
        ))
    }

    /// Checks the log: reads every leaf from disk again, rebuilds the tree,
    /// and compares it with the tree in memory and with the last signed
    /// checkpoint saved (whose signature must verify with this key). Logs what
    /// is wrong loudly, sets the metric `ferry_log_verified` (1 or 0), and
    /// remembers the result ([`health`](Self::health)).
    ///
    /// # Errors
    /// A store error while reading the leaves.
    pub async fn check(&self) -> Result<LogCheck, StoreError> {
        self.verify(true).await
    }

    /// [`check`](Self::check), with the leaves read from disk again
    /// (`reread`), or as the store read them when it opened (what it found
    /// wrong then, and the tree it built).
    async fn verify(&self, reread: bool) -> Result<LogCheck, StoreError> {
        let saved = self.ledger.checkpoint().await?;
        let mut problems = Vec::new();
        let mut checkpoint_size = None;
        let checkpoint = match saved
            .as_deref()
            .map(|note| self.verifier().verify_note(note))
        {
            None => None,
            Some(Ok(checkpoint)) => Some(checkpoint),
            Some(Err(err)) => {
                problems.push(format!("the last saved checkpoint does not verify: {err}"));
                None
            }
        };
        let signed_size = checkpoint.as_ref().map_or(0, Checkpoint::size);
        let (size, root_at) = if reread {
            let rescan = self.ledger.rescan(signed_size).await?;
            problems.extend(rescan.problems);
            (rescan.size, rescan.root_at)
        } else {
            problems.extend(self.ledger.problems());
            (self.ledger.size(), self.ledger.root(signed_size).ok())
        };
        if let Some(checkpoint) = &checkpoint {
            checkpoint_size = Some(checkpoint.size());
            if checkpoint.origin() != self.origin() {
                problems.push(format!(
                    "the last checkpoint is of log {:?}, this server's is {:?}",
                    checkpoint.origin(),
                    self.origin()
                ));
            }
            match root_at {
                None => problems.push(format!(
                    "the log has {size} leaves, fewer than the {} of its last signed checkpoint",
                    checkpoint.size()
                )),
                Some(root) if root != *checkpoint.root() => problems.push(format!(
                    "the first {} leaves are not those of the last signed checkpoint (their root differs): leaves were changed, removed or reordered",
                    checkpoint.size()
                )),
                Some(_) => {}
            }
            if problems.is_empty() && self.latest().is_none() {
                self.published.send_replace(Some(Published {
                    size: checkpoint.size(),
                    note: saved.clone().unwrap_or_default(),
                }));
            }
        }
        let check = LogCheck {
            ok: problems.is_empty(),
            size,
            checkpoint_size,
            problems,
        };
        for problem in &check.problems {
            tracing::error!(%problem, "THE STORE'S LOG DOES NOT VERIFY: no checkpoint is published until it is restored");
        }
        metrics::gauge!("ferry_log_verified").set(if check.ok { 1.0 } else { 0.0 });
        self.health.send_replace(check.clone());
        Ok(check)
    }
}
