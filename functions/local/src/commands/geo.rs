//! `bealert geo load|list`: administrative units (reference geography).

use crate::backend::{Backend, operator_stores};
use crate::unit_loading::units_bar;
use anyhow::Context;
use clap::Subcommand;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct GeoArgs {
    #[command(subcommand)]
    command: GeoCommand,
}

#[derive(Subcommand)]
enum GeoCommand {
    /// Add or replace administrative units from a GeoJSON FeatureCollection
    /// whose features carry code, level (region, province, arrondissement,
    /// canton, municipality) and name_nl/name_fr/name_de.
    Load {
        /// The GeoJSON file; leave it out with --shipped.
        file: Option<PathBuf>,
        /// Load the units bealert ships (cantons, judicial arrondissements,
        /// provinces, regions) again; they load by themselves on first start
        /// and with `aws setup`.
        #[arg(long, conflicts_with = "file")]
        shipped: bool,
        #[arg(long, env = "BEALERT_DATA_DIR", default_value = "./.bealert")]
        data_dir: PathBuf,
        #[arg(long, env = "BEALERT_BACKEND", value_enum, default_value = "embedded")]
        backend: Backend,
    },
    /// List the loaded units: level, code, names, vertices.
    List {
        #[arg(long, env = "BEALERT_DATA_DIR", default_value = "./.bealert")]
        data_dir: PathBuf,
        #[arg(long, env = "BEALERT_BACKEND", value_enum, default_value = "embedded")]
        backend: Backend,
    },
}

pub async fn run(args: GeoArgs) -> anyhow::Result<()> {
    match args.command {
        GeoCommand::Load {
            file,
            shipped,
            data_dir,
            backend,
        } => {
            let (_, geography, subscribers) = operator_stores(backend, &data_dir).await?;
            let bytes = match (&file, shipped) {
                (Some(f), _) => {
                    std::fs::read(f).with_context(|| format!("reading {}", f.display()))?
                }
                (None, true) => bealert_geodata::belgium_units(),
                (None, false) => anyhow::bail!("give a GeoJSON FILE, or --shipped"),
            };
            let bar = units_bar();
            bar.set_message("storing units");
            let progress = |done: usize, of: usize| {
                bar.set_length(of as u64);
                bar.set_position(done as u64);
            };
            let report =
                bealert_app::usecases::geography::load_units(geography.as_ref(), bytes, &progress)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            bar.finish_and_clear();
            if shipped {
                geography
                    .set_shipped_edition(bealert_geodata::EDITION)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            }
            let levels: Vec<String> = report
                .by_level
                .iter()
                .map(|(l, n)| format!("{n} {l}"))
                .collect();
            println!(
                "loaded {} units ({}), {} vertices",
                report.units,
                levels.join(", "),
                report.vertices
            );
            // Every registered address learns the units it falls in.
            let count = subscribers
                .subscriber_count()
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let bar = indicatif::ProgressBar::new(count);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "recording addresses' units [{bar:30}] {pos}/{len} subscribers",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            let indexed = bealert_app::usecases::geography::index_addresses(
                subscribers.as_ref(),
                geography.as_ref(),
                &|n| bar.set_position(n),
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            bar.finish_and_clear();
            println!(
                "recorded the units of {} subscribers' addresses ({} changed, {} changed meanwhile by their owners)",
                indexed.subscribers, indexed.updated, indexed.skipped
            );
            Ok(())
        }
        GeoCommand::List { data_dir, backend } => {
            let (_, geography, _) = operator_stores(backend, &data_dir).await?;
            for u in geography
                .units()
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?
            {
                println!(
                    "{}\t{}\t{}\t{}",
                    u.level,
                    u.code,
                    u.names.label(),
                    u.vertices
                );
            }
            Ok(())
        }
    }
}
