//! RabbitMQ plumbing shared by the relay, the consumers and the tail: connect, open a
//! channel, declare the durable topic exchange.

use lapin::options::ExchangeDeclareOptions;
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties, ExchangeKind};

/// A connection and a channel on it (the channel dies with the connection).
pub struct Link {
    /// Kept so the connection lives as long as the channel.
    pub connection: Connection,
    /// The channel.
    pub channel: Channel,
}

/// Connect and declare `exchange` (durable topic).
pub async fn connect(url: &str, exchange: &str) -> Result<Link, lapin::Error> {
    let connection = Connection::connect(url, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    channel
        .exchange_declare(
            exchange.into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    Ok(Link {
        connection,
        channel,
    })
}
