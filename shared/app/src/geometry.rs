//! Heavy geometry off the async runtime, one big shape at a time, under a deadline.
//!
//! Validating and covering a zone is CPU work: a real canton of 22,000
//! vertices, a MultiPolygon of 45,000 or a thousand circles. It runs on
//! blocking threads so the runtime keeps answering; large shapes share one
//! lane, so however many arrive at once, the other cores stay free for
//! small previews and everything else; and a shape that outruns the
//! deadline gets a 422 that names the limit.

use crate::AppError;
use bealert_core::ValidationErrors;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Work (vertices, with a circle counted as its 64-gon) above which a shape
/// takes the heavy lane.
pub const HEAVY_WORK: usize = 5_000;

/// Runs geometry on blocking threads; see the module doc.
#[derive(Debug, Clone)]
pub struct GeometryLane {
    heavy: Arc<Semaphore>,
    deadline: Duration,
}

impl GeometryLane {
    pub fn new(deadline: Duration) -> Self {
        Self {
            heavy: Arc::new(Semaphore::new(1)),
            deadline,
        }
    }

    /// Runs `f` on a blocking thread; `work` says how large the shape is.
    /// Past the deadline the caller gets a 422; the thread finishes its
    /// work in the background, still holding the heavy lane.
    pub async fn run<T, F>(&self, work: usize, f: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, AppError> + Send + 'static,
    {
        let started = tokio::time::Instant::now();
        let permit = if work > HEAVY_WORK {
            let acquire = self.heavy.clone().acquire_owned();
            match tokio::time::timeout(self.deadline, acquire).await {
                Ok(Ok(p)) => Some(p),
                Ok(Err(_)) => return Err(AppError::Internal("the geometry lane is closed".into())),
                Err(_) => return Err(self.too_slow(work)),
            }
        } else {
            None
        };
        let task = tokio::task::spawn_blocking(move || {
            let out = f();
            drop(permit);
            out
        });
        let left = self.deadline.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, task).await {
            Ok(Ok(out)) => out,
            Ok(Err(e)) => Err(AppError::Internal(format!("geometry task failed: {e}"))),
            Err(_) => Err(self.too_slow(work)),
        }
    }

    fn too_slow(&self, work: usize) -> AppError {
        AppError::Invalid(ValidationErrors::single(
            "area",
            format!(
                "checking this zone ({work} vertices and circle points) took longer than the {} s allowed; simplify the shape or split the alert",
                self.deadline.as_secs_f64()
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_shape_past_the_deadline_gets_a_422_naming_the_limit() {
        let lane = GeometryLane::new(Duration::from_millis(50));
        let out = lane
            .run(HEAVY_WORK + 1, || {
                std::thread::sleep(Duration::from_millis(300));
                Ok(())
            })
            .await;
        match out {
            Err(AppError::Invalid(e)) => assert!(e.to_string().contains("0.05 s allowed"), "{e}"),
            other => panic!("expected a 422, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn small_shapes_do_not_wait_for_a_heavy_one() {
        let lane = GeometryLane::new(Duration::from_secs(5));
        let heavy = {
            let lane = lane.clone();
            tokio::spawn(async move {
                lane.run(HEAVY_WORK * 10, || {
                    std::thread::sleep(Duration::from_millis(400));
                    Ok(1)
                })
                .await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let started = std::time::Instant::now();
        let small = lane.run(10, || Ok(2)).await.unwrap();
        assert_eq!(small, 2);
        assert!(
            !heavy.is_finished(),
            "the small shape was answered while the heavy one still ran ({:?})",
            started.elapsed()
        );
        assert_eq!(heavy.await.unwrap().unwrap(), 1);
    }
}
