//! Catalog reads and admin writes: terms, sections with cursor pagination and course
//! filter, the section view's counters, and the live seat stream.

use crate::helpers::*;
use serde_json::json;

#[tokio::test]
async fn sections_are_listed_in_pages_and_filtered() {
    let app = TestApp::spawn().await;
    let term = app.open_term().await;
    app.course("CS101", 3, &[]).await;
    app.course("MATH101", 4, &["CS101"]).await;
    for i in 1..=5 {
        app.section(term, "CS101", &format!("0{i}"), 10, 0, json!([]))
            .await;
    }
    app.section(term, "MATH101", "01", 10, 0, meet("tue", "11:00", "12:15"))
        .await;
    let terms = app.get_json("/api/v1/terms", None).await;
    assert!(
        terms
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == term.to_string())
    );

    let mut seen = vec![];
    let mut cursor: Option<String> = None;
    loop {
        let q = cursor
            .as_ref()
            .map(|c| format!("&cursor={c}"))
            .unwrap_or_default();
        let page = app
            .get_json(&format!("/api/v1/terms/{term}/sections?limit=2{q}"), None)
            .await;
        for s in page["items"].as_array().unwrap() {
            seen.push(format!(
                "{}-{}",
                s["course_code"].as_str().unwrap(),
                s["section_code"].as_str().unwrap()
            ));
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(
        seen,
        [
            "CS101-01",
            "CS101-02",
            "CS101-03",
            "CS101-04",
            "CS101-05",
            "MATH101-01"
        ]
    );
    let math = app
        .get_json(
            &format!("/api/v1/terms/{term}/sections?course=MATH101"),
            None,
        )
        .await;
    let m = &math["items"][0];
    assert_eq!(m["prerequisites"], json!(["CS101"]));
    assert_eq!(m["credits"], 4);
    assert_eq!(
        m["meetings"],
        json!([{"day": "tue", "start": "11:00", "end": "12:15"}])
    );
    assert_eq!(m["seats_left"], 10);
    app.stop().await;
}

#[tokio::test]
async fn seat_stream_pushes_each_committed_count() {
    let app = TestApp::spawn().await;
    let (_, section) = app.open_cs101(2, 1, json!([])).await;
    let mut stream = app.seat_stream(&app.client, section).await;
    assert_eq!(stream.next_event().await["seats_taken"], 0);
    let s = app.students(3, &[]).await;
    app.enroll(&s[0].1, section).await;
    assert_eq!(stream.next_event().await["seats_taken"], 1);
    app.enroll(&s[1].1, section).await;
    let e = stream.next_event().await;
    assert_eq!(
        (e["seats_taken"].as_i64(), e["seats_left"].as_i64()),
        (Some(2), Some(0))
    );
    app.enroll(&s[2].1, section).await;
    assert_eq!(stream.next_event().await["waitlist_length"], 1);
    app.stop().await; // open streams end at shutdown instead of holding it up
    assert!(stream.ended().await, "the stream ended");
}
