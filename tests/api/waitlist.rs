//! Waitlist behaviour end to end: a drop promotes the head, a capacity raise promotes in
//! FIFO order, a capacity below the seats taken is refused, leaving the waitlist works.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test]
async fn drop_promotes_the_waitlist_head_in_the_same_commit() {
    let app = TestApp::spawn().await;
    let (_, section) = app.open_cs101(1, 5, meet("mon", "09:00", "10:00")).await;
    let s = app.students(3, &[]).await;
    assert_eq!(app.enroll(&s[0].1, section).await.0, StatusCode::CREATED);
    let (st, b) = app.enroll(&s[1].1, section).await;
    assert_eq!(
        (st, b["position"].as_i64()),
        (StatusCode::ACCEPTED, Some(1))
    );
    let (st, b) = app.enroll(&s[2].1, section).await;
    assert_eq!(
        (st, b["position"].as_i64()),
        (StatusCode::ACCEPTED, Some(2))
    );
    let (st, b) = app.enroll(&s[2].1, section).await;
    assert_problem(st, &b, StatusCode::CONFLICT, "already_waitlisted");

    let (st, b) = app.drop_section(&s[0].1, section).await;
    assert_eq!(st, StatusCode::OK, "{b}");
    assert_eq!(b, json!({"status": "dropped", "promoted": true}));

    let rows = app.rows(section).await;
    let status_of = |id| rows.iter().find(|r| r.0 == id).map(|r| (r.1.clone(), r.2));
    assert_eq!(status_of(s[0].0), None);
    assert_eq!(status_of(s[1].0), Some(("enrolled".into(), None)));
    assert_eq!(status_of(s[2].0), Some(("waitlisted".into(), Some(1))));
    let events: Vec<String> = sqlx::query_scalar("SELECT routing_key FROM outbox ORDER BY id")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        events,
        [
            "enrollment.created",
            "waitlist.added",
            "waitlist.added",
            "enrollment.dropped",
            "waitlist.promoted"
        ]
    );

    // The schedule shows the promotion and the remaining position.
    let schedule = async |token| {
        app.get_json("/api/v1/students/me/schedule", Some(token))
            .await
    };
    assert_eq!(schedule(&s[2].1).await["waitlisted"][0]["position"], 1);
    let sched = schedule(&s[1].1).await;
    assert_eq!(sched["enrolled"][0]["section_id"], section.to_string());
    assert_eq!(sched["credits"], 3);
    assert_eq!(
        sched["enrolled"][0]["meetings"],
        json!([{"day": "mon", "start": "09:00", "end": "10:00"}]),
        "a calendar needs no read per section"
    );

    // Leaving the waitlist promotes nobody; dropping twice is not_enrolled.
    assert_eq!(
        app.drop_section(&s[2].1, section).await.1,
        json!({"status": "dropped", "promoted": false})
    );
    let (st, b) = app.drop_section(&s[2].1, section).await;
    assert_problem(st, &b, StatusCode::NOT_FOUND, "not_enrolled");
    app.stop().await;
}

#[tokio::test]
async fn capacity_changes_respect_taken_seats_and_promote_fifo() {
    let app = TestApp::spawn().await;
    let (_, section) = app.open_cs101(2, 10, json!([])).await;
    let s = app.students(6, &[]).await;
    app.enroll_each(&s, section).await;
    let path = format!("/api/v1/sections/{section}");
    let patch = |token: &str, cap: u32| {
        let req = app.request(Method::PATCH, &path, Some(token));
        req.json(&json!({"capacity": cap})).send()
    };
    let r = patch(&app.admin_token, 1).await.unwrap();
    expect_problem(
        "capacity 1",
        r,
        StatusCode::CONFLICT,
        "capacity_below_taken",
    )
    .await;

    let r = patch(&app.admin_token, 4).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let view: Value = r.json().await.unwrap();
    assert_eq!(
        (
            view["capacity"].as_i64(),
            view["seats_taken"].as_i64(),
            view["waitlist_length"].as_i64()
        ),
        (Some(4), Some(4), Some(2))
    );
    let rows = app.rows(section).await;
    let status_of = |i: usize| rows.iter().find(|r| r.0 == s[i].0).unwrap().1.clone();
    assert_eq!(
        (0..4).map(status_of).collect::<Vec<_>>(),
        ["enrolled"; 4],
        "the two oldest waiting were promoted"
    );
    assert_eq!((4..6).map(status_of).collect::<Vec<_>>(), ["waitlisted"; 2]);

    // A student cannot change capacity.
    let r = patch(&s[0].1, 9).await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    app.stop().await;
}
