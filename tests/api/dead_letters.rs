//! The event consumers against the real RabbitMQ and PostgreSQL: a message a consumer can
//! never apply goes to its dead-letter queue after a few tries, and the consumer goes on
//! with the next messages.

use crate::helpers::*;
use lapin::options::{BasicAckOptions, BasicGetOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_is_dead_lettered_after_a_few_tries_and_consuming_goes_on() {
    let app = TestApp::spawn_with(|s| s.events.consumers_in_process = true).await;
    let (_, section) = app.open_cs101(10, 0, json!([])).await;
    let students = app.students(3, &[]).await;
    let (first, poison, next) = (&students[0], &students[1], &students[2]);
    let notifications = async |student: uuid::Uuid| -> i64 {
        app.count(
            "SELECT count(*) FROM notifications WHERE student_id = $1",
            student,
        )
        .await
    };
    // The consumer is running once it has applied a first event.
    assert_eq!(app.enroll(&first.1, section).await.0, StatusCode::CREATED);
    wait_until("the notify consumer applied a first event", async || {
        notifications(first.0).await == 1
    })
    .await;

    // Every notification for the poison student fails, whatever the number of tries: an
    // event the consumer can never apply. A sequence (not rolled back) counts the tries.
    for sql in [
        "CREATE SEQUENCE poison_tries".to_string(),
        "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN PERFORM nextval('poison_tries'); RAISE EXCEPTION 'poison'; END $$"
            .to_string(),
        format!(
            "CREATE TRIGGER refuse_poison BEFORE INSERT ON notifications FOR EACH ROW
             WHEN (NEW.student_id = '{}') EXECUTE FUNCTION refuse_poison()",
            poison.0
        ),
    ] {
        sqlx::query(&sql).execute(&app.pool).await.unwrap();
    }
    assert_eq!(app.enroll(&poison.1, section).await.0, StatusCode::CREATED);
    assert_eq!(app.enroll(&next.1, section).await.0, StatusCode::CREATED);

    wait_until("the next event applied", async || {
        notifications(next.0).await == 1
    })
    .await;
    let dead_queue = format!("{}.notify.dead", app.settings.events.queue_prefix);
    let link = registrar::events::amqp::connect(&amqp_url(), &app.settings.events.events_exchange)
        .await
        .unwrap();
    // Declared as the consumer declares it, so that the test can wait on it either way.
    link.channel
        .queue_declare(
            dead_queue.as_str().into(),
            QueueDeclareOptions::durable(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    let mut dead: Option<Value> = None;
    wait_until("the poison message in the dead-letter queue", async || {
        let got = link
            .channel
            .basic_get(dead_queue.as_str().into(), BasicGetOptions::default())
            .await
            .unwrap();
        if let Some(message) = got {
            dead = Some(serde_json::from_slice(&message.delivery.data).unwrap());
            message
                .delivery
                .ack(BasicAckOptions::default())
                .await
                .unwrap();
        }
        dead.is_some()
    })
    .await;
    let dead = dead.unwrap();
    assert_eq!(dead["student_id"], poison.0.to_string());
    assert_eq!(dead["type"], "enrollment.created");
    let tries: i64 = sqlx::query_scalar("SELECT last_value FROM poison_tries")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        tries, 5,
        "dead-lettered after the configured number of tries"
    );
    assert_eq!(notifications(poison.0).await, 0);

    // The consumer is still consuming.
    let (later, token) = app.student().await;
    assert_eq!(app.enroll(&token, section).await.0, StatusCode::CREATED);
    wait_until("a later event applied", async || {
        notifications(later).await == 1
    })
    .await;
    app.stop().await;
}
