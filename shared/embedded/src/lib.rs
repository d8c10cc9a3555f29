//! bealert-embedded: the local home's adapters — nothing to install.
//!
//! A data directory holds `store.db` (subscribers, alerts, deliveries,
//! operators), `queue.db` (jobs with visibility timeouts and dead letters)
//! and `outbox/<channel>.jsonl` (every message "sent"). All of it survives
//! `kill -9`: SQLite commits are atomic, and the outbox is written line by
//! line with a record of every idempotency key it holds.

mod db;
pub mod gazetteer;
pub mod geography;
pub mod idempotency;
pub mod networks;
pub mod outbox;
pub mod queue;
pub mod registrations;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub use gazetteer::Gazetteer;
pub use geography::SqliteGeography;
pub use idempotency::SqliteIdempotency;
pub use networks::SqliteNetworks;
pub use outbox::OutboxGateway;
pub use queue::SqliteQueue;
pub use registrations::SqliteRegistrations;
pub use store::SqliteStore;

use bealert_app::ports::{BroadcastPorts, Gateways, Ports, SignupPorts};
use bealert_core::Channel;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot use data directory {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open {path}: {message}")]
    Db { path: PathBuf, message: String },
    #[error(
        "another bealert process is serving {0} (its lock is held); stop it, or pick another --data-dir"
    )]
    Locked(PathBuf),
}

/// The embedded home: every port on files in one data directory.
pub struct Embedded {
    pub store: Arc<SqliteStore>,
    /// Citizens' registrations and signup counters (in `store.db`).
    pub registrations: Arc<SqliteRegistrations>,
    pub gazetteer: Arc<Gazetteer>,
    /// Mobile networks, their cells and deliveries (in `store.db`).
    pub networks: Arc<SqliteNetworks>,
    /// Administrative units (in `store.db`).
    pub geography: Arc<SqliteGeography>,
    /// `Idempotency-Key` records (in `store.db`).
    pub idempotency: Arc<SqliteIdempotency>,
    /// The simulated networks every network uses unless given a gateway URL.
    pub simulator: bealert_providers::netsim::NetworkSimulator,
    /// The simulated outlets (social, sirens, signs) of outlets whose URL
    /// is `sim`; what they publish is also in `outbox/public.jsonl`.
    pub public_simulator: bealert_providers::publicsim::PublicSimulator,
    pub queue: Arc<SqliteQueue>,
    pub outbox: [Arc<OutboxGateway>; 3],
    pub dir: PathBuf,
}

impl Embedded {
    pub fn open(dir: &Path) -> Result<Self, OpenError> {
        std::fs::create_dir_all(dir).map_err(|source| OpenError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let store = Arc::new(SqliteStore::open(&dir.join("store.db"))?);
        let registrations = Arc::new(SqliteRegistrations::beside(&store)?);
        let networks = Arc::new(SqliteNetworks::beside(&store)?);
        let geography = Arc::new(SqliteGeography::beside(&store)?);
        let idempotency = Arc::new(SqliteIdempotency::beside(&store)?);
        let queue = Arc::new(SqliteQueue::open(
            &dir.join("queue.db"),
            queue::DEFAULT_MAX_RECEIVES,
        )?);
        let outbox_dir = dir.join("outbox");
        let open = |c| OutboxGateway::open(&outbox_dir, c).map(Arc::new);
        let outbox = [
            open(Channel::Sms)?,
            open(Channel::Voice)?,
            open(Channel::Email)?,
        ];
        Ok(Self {
            store,
            registrations,
            gazetteer: Arc::new(Gazetteer::belgium()),
            networks,
            geography,
            idempotency,
            simulator: bealert_providers::netsim::NetworkSimulator::new(),
            public_simulator: bealert_providers::publicsim::PublicSimulator::logging_to(
                outbox_dir.join("public.jsonl"),
            ),
            queue,
            outbox,
            dir: dir.to_path_buf(),
        })
    }

    pub fn ports(&self) -> Ports {
        Ports {
            subscribers: self.store.clone(),
            alerts: self.store.clone(),
            deliveries: self.store.clone(),
            operators: self.store.clone(),
            geography: self.geography.clone(),
            documents: self.store.clone(),
            idempotency: self.idempotency.clone(),
            queue: self.queue.clone(),
            gateways: Gateways {
                sms: self.outbox[0].clone(),
                voice: self.outbox[1].clone(),
                email: self.outbox[2].clone(),
            },
            // Network and outlet deliveries live beside the networks.
            targets: self.networks.clone(),
        }
    }

    /// Loads the administrative units bealert ships (cantons, judicial
    /// arrondissements, provinces, regions; see `bealert-geodata`) unless
    /// this edition is there already: a new data directory has them on
    /// first start. `None`: nothing to do.
    pub async fn ensure_shipped_units(
        &self,
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Result<Option<bealert_app::usecases::geography::LoadReport>, bealert_app::AppError> {
        bealert_app::usecases::geography::ensure_shipped_units(
            self.geography.as_ref(),
            self.store.as_ref(),
            bealert_geodata::EDITION,
            bealert_geodata::belgium_units,
            progress,
        )
        .await
    }

    /// The signup's ports: registrations, counters, the offline gazetteer,
    /// and codes into the outbox (`serve` puts the signup's own provider
    /// chains there: `--code-sms-providers`...).
    pub fn signup_ports(&self) -> SignupPorts {
        SignupPorts {
            registrations: self.registrations.clone(),
            counters: self.registrations.clone(),
            geocoder: self.gazetteer.clone(),
            gateways: Gateways {
                sms: self.outbox[0].clone(),
                voice: self.outbox[1].clone(),
                email: self.outbox[2].clone(),
            },
        }
    }

    /// Alert-SMS: networks and target deliveries in `store.db`; every
    /// network is reached through `gateways` (the simulator unless a
    /// network was given an HTTP gateway).
    pub fn broadcast_ports(
        &self,
        gateways: Arc<dyn bealert_app::ports::NetworkGateways>,
    ) -> BroadcastPorts {
        BroadcastPorts {
            networks: self.networks.clone(),
            gateways,
            // Files come in the request itself (up to 128 MiB).
            uploads: None,
        }
    }

    /// Public channels: outlets over HTTP, `sim` ones simulated in process;
    /// each outlet's rate limit counted in `store.db`.
    pub fn public_ports(&self, timeout: std::time::Duration) -> bealert_app::ports::PublicPorts {
        bealert_app::ports::PublicPorts {
            gateway: Arc::new(bealert_providers::public_http::HttpPublic::new(
                timeout,
                Some(self.public_simulator.clone()),
            )),
            counters: self.registrations.clone(),
        }
    }

    /// The signup's key (code hashes, form and link tokens): 32 random
    /// bytes in `secret.key`, made on first use, readable by the owner only.
    pub fn signup_secret(&self) -> Result<Vec<u8>, OpenError> {
        let path = self.dir.join("secret.key");
        let io = |source| OpenError::Io {
            path: path.clone(),
            source,
        };
        match std::fs::read(&path) {
            Ok(key) if key.len() == 32 => return Ok(key),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        let key: [u8; 32] = rand::random();
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&path).map_err(io)?;
        std::io::Write::write_all(&mut file, &key).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(key.to_vec())
    }

    /// Personal data does not live forever: deliveries of alerts older
    /// than `retention`, dead letters and archived outbox files older than
    /// it are deleted; live outbox files older than `rotate_after` move to
    /// `outbox/archive/`. The local runner calls this hourly.
    pub async fn sweep(
        &self,
        now_ms: i64,
        retention: std::time::Duration,
        rotate_after: std::time::Duration,
    ) -> Result<Swept, bealert_app::ports::StoreError> {
        let cutoff = now_ms - i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        let mut swept = Swept {
            deliveries: self.store.expire_deliveries(cutoff).await?,
            dead_letters: self.queue.expire_dead_letters(cutoff).await?,
            ..Swept::default()
        };
        // Signup counters matter for a day at most; registrations nobody
        // verified go after a week.
        self.registrations
            .expire_counters(now_ms - 2 * 24 * 3_600_000)
            .await?;
        swept.pending_registrations = self.registrations.expire_pending(now_ms).await?;
        self.idempotency.expire_keys(now_ms).await?;
        let io = |e: std::io::Error| bealert_app::ports::StoreError::Transient(e.to_string());
        for outbox in &self.outbox {
            if outbox.rotate(now_ms, rotate_after).map_err(io)?.is_some() {
                swept.rotated += 1;
            }
            swept.archives_deleted += outbox.expire(cutoff).map_err(io)?;
        }
        Ok(swept)
    }

    /// After a crash, nobody else holds this directory's work: make in-flight
    /// jobs visible and delivery leases free at once instead of waiting for
    /// their timeouts. Only call it while holding the [`DataDirLock`].
    pub async fn recover(
        &self,
        _lock: &DataDirLock,
    ) -> Result<(u64, u64), bealert_app::ports::StoreError> {
        let jobs = self.queue.release_in_flight().await?;
        let leases = self.store.release_leases().await?;
        Ok((jobs, leases))
    }
}

/// What one [`Embedded::sweep`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    pub deliveries: u64,
    pub pending_registrations: u64,
    pub dead_letters: u64,
    pub rotated: usize,
    pub archives_deleted: usize,
}

/// An exclusive lock on a data directory, held by the one process serving it.
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    pub fn acquire(dir: &Path) -> Result<Self, OpenError> {
        std::fs::create_dir_all(dir).map_err(|source| OpenError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join("serve.lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| OpenError::Io {
                path: path.clone(),
                source,
            })?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(OpenError::Locked(dir.to_path_buf())),
            Err(std::fs::TryLockError::Error(source)) => Err(OpenError::Io { path, source }),
        }
    }
}
