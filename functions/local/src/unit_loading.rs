//! Loading administrative units with a progress bar: the shipped ones on
//! first use, and the bar `geo load` shows.

/// A progress bar for loading units.
pub fn units_bar() -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} units")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

/// Loads the shipped units unless they are there, with a progress bar.
pub async fn shipped_units(
    geo: &dyn bealert_app::ports::GeoStore,
    subscribers: &dyn bealert_app::ports::SubscriberStore,
) -> anyhow::Result<()> {
    let bar = units_bar();
    bar.set_message("loading Belgium's administrative units (first use)");
    let progress = |done: usize, of: usize| {
        bar.set_length(of as u64);
        bar.set_position(done as u64);
    };
    let loaded = bealert_app::usecases::geography::ensure_shipped_units(
        geo,
        subscribers,
        bealert_geodata::EDITION,
        bealert_geodata::belgium_units,
        &progress,
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    bar.finish_and_clear();
    if let Some(r) = loaded {
        eprintln!(
            "loaded {} administrative units ({} vertices); {}",
            r.units,
            r.vertices,
            bealert_geodata::ATTRIBUTION
        );
    }
    Ok(())
}
