//! `bealert aws setup`: the AWS home's tables and queues (LocalStack, development).

use clap::Subcommand;

#[derive(clap::Args)]
pub struct AwsArgs {
    #[command(subcommand)]
    command: AwsCommand,
}

#[derive(Subcommand)]
enum AwsCommand {
    /// Create the tables and queues that are missing and verify the e-mail
    /// sender (BEALERT_* and AWS_* variables say where; see the README).
    Setup,
}

pub async fn run(args: AwsArgs) -> anyhow::Result<()> {
    match args.command {
        AwsCommand::Setup => {
            #[cfg(feature = "aws")]
            {
                let aws = crate::local::aws_home().await;
                aws.setup().await.map_err(|e| anyhow::anyhow!("{e}"))?;
                // Belgium's administrative units, unless this edition is there.
                crate::unit_loading::shipped_units(aws.store.as_ref(), aws.store.as_ref()).await?;
                println!(
                    "tables {:?} and queues {}* are ready",
                    aws.settings.tables, aws.settings.queue_prefix
                );
                Ok(())
            }
            #[cfg(not(feature = "aws"))]
            crate::backend::no_aws()
        }
    }
}
