//! Linked sets and the cart through the student API: a lecture is taken only with one
//! linked section of every other component, a lab is swapped inside its set as one
//! decision, a drop of one member drops the set, corequisites travel in the same
//! decision, and the cart is staged, previewed and submitted in one request. Judged by the
//! rows PostgreSQL holds and `registrar verify`'s checks.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

struct Catalog {
    lec: Uuid,
    lab1: Uuid,
    lab2: Uuid,
    /// A lab of the other lecture, not linked to `lec`.
    other_lab: Uuid,
    /// A plain course's section.
    plain: Uuid,
    /// PHYS2425 lecture and lab, which need MATH2413 in the same term.
    phys_lec: Uuid,
    phys_lab: Uuid,
    math: Uuid,
}

async fn section(app: &TestApp, term: Uuid, course: &str, code: &str, extra: Value) -> Uuid {
    let mut body = json!({"term_id": term, "course_code": course, "section_code": code,
        "capacity": 5, "waitlist_capacity": 5, "meetings": []});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    app.admin_post("/api/v1/sections", body).await["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn catalog(app: &TestApp) -> Catalog {
    let term = app.open_term().await;
    for body in [
        json!({"code": "BIOL1406", "title": "Biology", "credits": 4, "components": ["lecture", "lab"]}),
        json!({"code": "ENGL1301", "title": "Composition", "credits": 3}),
        json!({"code": "MATH2413", "title": "Calculus I", "credits": 4}),
        json!({"code": "PHYS2425", "title": "Physics I", "credits": 4,
               "components": ["lecture", "lab"], "corequisites": ["MATH2413"]}),
    ] {
        app.admin_post("/api/v1/courses", body).await;
    }
    let lec = section(
        app,
        term,
        "BIOL1406",
        "001",
        json!({"meetings": meet("mon", "09:00", "10:00")}),
    )
    .await;
    let lec2 = section(
        app,
        term,
        "BIOL1406",
        "002",
        json!({"meetings": meet("mon", "11:00", "12:00")}),
    )
    .await;
    let lab1 = section(
        app,
        term,
        "BIOL1406",
        "L01",
        json!({"component": "lab", "links": [lec], "meetings": meet("tue", "14:00", "16:00")}),
    )
    .await;
    let lab2 = section(
        app,
        term,
        "BIOL1406",
        "L02",
        json!({"component": "lab", "links": [lec], "meetings": meet("wed", "14:00", "16:00")}),
    )
    .await;
    let other_lab = section(
        app,
        term,
        "BIOL1406",
        "L03",
        json!({"component": "lab", "links": [lec2], "meetings": meet("thu", "14:00", "16:00")}),
    )
    .await;
    let plain = section(
        app,
        term,
        "ENGL1301",
        "01",
        json!({"meetings": meet("fri", "09:00", "10:00")}),
    )
    .await;
    let math = section(
        app,
        term,
        "MATH2413",
        "01",
        json!({"meetings": meet("fri", "11:00", "12:00")}),
    )
    .await;
    let phys_lec = section(
        app,
        term,
        "PHYS2425",
        "001",
        json!({"meetings": meet("tue", "09:00", "10:00")}),
    )
    .await;
    let phys_lab = section(
        app,
        term,
        "PHYS2425",
        "L01",
        json!({"component": "lab", "links": [phys_lec], "meetings": meet("thu", "09:00", "11:00")}),
    )
    .await;
    Catalog {
        lec,
        lab1,
        lab2,
        other_lab,
        plain,
        phys_lec,
        phys_lab,
        math,
    }
}

async fn post_set(
    app: &TestApp,
    token: &str,
    sections: &[Uuid],
    replacing: &[Uuid],
) -> (StatusCode, Value) {
    let r = app
        .request(Method::POST, "/api/v1/enrollments/sets", Some(token))
        .json(&json!({"sections": sections, "replacing": replacing}))
        .send()
        .await
        .expect("set");
    answer(r).await
}

async fn active(app: &TestApp, student: Uuid) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = sqlx::query_scalar(
        "SELECT section_id FROM enrollments WHERE student_id = $1 AND status = 'enrolled'",
    )
    .bind(student)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    ids.sort();
    ids
}

fn sorted(mut v: Vec<Uuid>) -> Vec<Uuid> {
    v.sort();
    v
}

async fn assert_verified(app: &TestApp) {
    let found = registrar::verify::violations(&app.pool).await.unwrap();
    assert!(found.is_empty(), "verify found {found:?}");
}

#[tokio::test]
async fn a_lecture_comes_with_its_lab_and_leaves_with_it() {
    let app = TestApp::spawn().await;
    let c = catalog(&app).await;
    let (student, token) = app.student().await;
    // Alone: refused, nothing recorded but the refusal.
    let (st, body) = app.enroll(&token, c.lec).await;
    assert_problem(
        st,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "linked_set_incomplete",
    );
    let (st, body) = post_set(&app, &token, &[c.lec, c.other_lab], &[]).await;
    assert_problem(st, &body, StatusCode::UNPROCESSABLE_ENTITY, "not_linked");
    assert!(active(&app, student).await.is_empty());
    // Whole: both seats.
    let (st, body) = post_set(&app, &token, &[c.lec, c.lab1], &[]).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    assert_eq!(active(&app, student).await, sorted(vec![c.lec, c.lab1]));
    // Another lab of the same lecture: one decision, never two labs or none.
    let (st, body) = post_set(&app, &token, &[c.lab2], &[c.lab1]).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    assert_eq!(body["dropped"], json!([c.lab1]), "{body}");
    assert_eq!(active(&app, student).await, sorted(vec![c.lec, c.lab2]));
    // A second lab beside the first is a duplicate of the component.
    let (st, body) = post_set(&app, &token, &[c.lab1], &[]).await;
    assert_problem(st, &body, StatusCode::CONFLICT, "duplicate_course");
    // Dropping the lab drops the set.
    let (st, body) = app.drop_section(&token, c.lab2).await;
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "dropped", "{body}");
    assert_eq!(
        sorted(serde_json::from_value(body["dropped"].clone()).unwrap()),
        sorted(vec![c.lab2, c.lec])
    );
    assert!(active(&app, student).await.is_empty());
    assert_verified(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn a_corequisite_travels_in_the_same_decision_and_guards_its_drop() {
    let app = TestApp::spawn().await;
    let c = catalog(&app).await;
    let (student, token) = app.student().await;
    let (st, body) = post_set(&app, &token, &[c.phys_lec, c.phys_lab], &[]).await;
    assert_problem(
        st,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "corequisite_missing",
    );
    let (st, body) = post_set(&app, &token, &[c.phys_lec, c.phys_lab, c.math], &[]).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    assert_eq!(
        active(&app, student).await,
        sorted(vec![c.phys_lec, c.phys_lab, c.math])
    );
    // MATH2413 cannot go while PHYS2425 stays.
    let (st, body) = app.drop_section(&token, c.math).await;
    assert_problem(st, &body, StatusCode::CONFLICT, "corequisite_required");
    assert_eq!(active(&app, student).await.len(), 3);
    assert_verified(&app).await;
    app.stop().await;
}

async fn cart_call(app: &TestApp, token: &str, method: Method, path: &str) -> (StatusCode, Value) {
    let r = app
        .request(
            method,
            &format!("/api/v1/students/me/cart{path}"),
            Some(token),
        )
        .header("Idempotency-Key", "cart-key")
        .send()
        .await
        .expect("cart");
    answer(r).await
}

#[tokio::test]
async fn a_cart_is_staged_previewed_and_submitted_at_once() {
    let app = TestApp::spawn().await;
    let c = catalog(&app).await;
    let (student, token) = app.student().await;
    for s in [c.lec, c.lab1, c.plain, c.phys_lec, c.phys_lab, c.math] {
        let (st, body) = cart_call(&app, &token, Method::PUT, &format!("/{s}")).await;
        assert_eq!(st, StatusCode::OK, "{body}");
    }
    let (st, cart) = cart_call(&app, &token, Method::GET, "").await;
    assert_eq!(st, StatusCode::OK);
    let items = cart["items"].as_array().unwrap();
    assert_eq!(items.len(), 6);
    let group =
        |s: Uuid| items.iter().find(|i| i["section_id"] == json!(s)).unwrap()["group"].clone();
    assert_eq!(group(c.lec), json!("BIOL1406"));
    assert_eq!(group(c.plain), Value::Null);
    assert_eq!(
        group(c.math),
        group(c.phys_lab),
        "a corequisite joins its course's decision"
    );
    // Preview: every item would pass; nothing is taken.
    let (st, preview) = cart_call(&app, &token, Method::POST, "/preview").await;
    assert_eq!(st, StatusCode::OK, "{preview}");
    for item in preview["items"].as_array().unwrap() {
        assert_eq!(item["verdict"], "would_enroll", "{preview}");
    }
    assert!(active(&app, student).await.is_empty());
    // A section that is not in the catalog cannot be staged.
    let (st, body) = cart_call(&app, &token, Method::PUT, &format!("/{}", Uuid::new_v4())).await;
    assert_problem(st, &body, StatusCode::NOT_FOUND, "section_not_found");
    // Submit: one request, each item's outcome; the cart empties.
    let (st, submitted) = cart_call(&app, &token, Method::POST, "/submit").await;
    assert_eq!(st, StatusCode::OK, "{submitted}");
    let outcomes = submitted["items"].as_array().unwrap();
    assert_eq!(outcomes.len(), 6, "{submitted}");
    assert!(
        outcomes.iter().all(|o| o["status"] == "enrolled"),
        "{submitted}"
    );
    let lab_decision = &outcomes
        .iter()
        .find(|o| o["section_id"] == json!(c.lab1))
        .unwrap()["decision_id"];
    let lec_decision = &outcomes
        .iter()
        .find(|o| o["section_id"] == json!(c.lec))
        .unwrap()["decision_id"];
    assert!(
        lab_decision.is_string() && lab_decision == lec_decision,
        "{submitted}"
    );
    assert_eq!(
        active(&app, student).await,
        sorted(vec![c.lec, c.lab1, c.plain, c.phys_lec, c.phys_lab, c.math])
    );
    let (_, cart) = cart_call(&app, &token, Method::GET, "").await;
    assert_eq!(cart["items"], json!([]));
    // The same key replays the first answer.
    let (st, again) = cart_call(&app, &token, Method::POST, "/submit").await;
    assert_eq!((st, &again), (StatusCode::OK, &submitted));
    assert_verified(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn a_full_lab_refuses_its_set_in_the_cart_and_the_rest_is_decided() {
    let app = TestApp::spawn().await;
    let c = catalog(&app).await;
    sqlx::query("UPDATE sections SET capacity = 0, waitlist_capacity = 0 WHERE id = $1")
        .bind(c.lab1)
        .execute(&app.pool)
        .await
        .unwrap();
    let (student, token) = app.student().await;
    for s in [c.lec, c.lab1, c.plain] {
        cart_call(&app, &token, Method::PUT, &format!("/{s}")).await;
    }
    let (_, preview) = cart_call(&app, &token, Method::POST, "/preview").await;
    let verdict = |s: Uuid| {
        preview["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["section_id"] == json!(s))
            .unwrap()["verdict"]
            .clone()
    };
    assert_eq!(verdict(c.lec), "would_fail", "{preview}");
    assert_eq!(verdict(c.plain), "would_enroll", "{preview}");
    let (st, submitted) = cart_call(&app, &token, Method::POST, "/submit").await;
    assert_eq!(st, StatusCode::OK, "{submitted}");
    let status = |s: Uuid| {
        submitted["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["section_id"] == json!(s))
            .unwrap()
            .clone()
    };
    assert_eq!(status(c.lec)["status"], "refused");
    assert_eq!(status(c.lec)["code"], "section_full");
    assert_eq!(status(c.plain)["status"], "enrolled");
    assert_eq!(active(&app, student).await, vec![c.plain]);
    let (_, cart) = cart_call(&app, &token, Method::GET, "").await;
    assert_eq!(
        cart["items"].as_array().unwrap().len(),
        2,
        "refused items stay: {cart}"
    );
    // An item the student took outside the cart leaves it at the next submit.
    let (st, _) = cart_call(&app, &token, Method::PUT, &format!("/{}", c.plain)).await;
    assert_eq!(st, StatusCode::OK);
    let r = app
        .request(
            Method::POST,
            "/api/v1/students/me/cart/submit",
            Some(&token),
        )
        .header("Idempotency-Key", "cart-key-2")
        .send()
        .await
        .unwrap();
    let (st, again) = answer(r).await;
    assert_eq!(st, StatusCode::OK, "{again}");
    let (_, cart) = cart_call(&app, &token, Method::GET, "").await;
    let left: Vec<&Value> = cart["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["section_id"])
        .collect();
    assert!(
        !left.contains(&&json!(c.plain)),
        "the enrolled item left the cart: {cart}"
    );
    assert_eq!(left.len(), 2, "the refused set stays: {cart}");
    assert_verified(&app).await;
    app.stop().await;
}
