//! Linked sections and corequisites in the catalog: a course with required components
//! (lecture, lab, recitation) and corequisites, its sections linked when created or later
//! (`PUT /sections/{id}/links`), the catalog answers showing component, links, components
//! and corequisites, and the admin API's refusals of links the rules do not allow.

use crate::helpers::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

/// Create a section from `body` plus the usual fields; the answer.
async fn section(app: &TestApp, term: Uuid, course: &str, code: &str, extra: Value) -> Value {
    let mut body = json!({"term_id": term, "course_code": course, "section_code": code,
        "capacity": 20, "meetings": []});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    app.admin_post("/api/v1/sections", body).await
}

fn id(v: &Value) -> Uuid {
    v["id"].as_str().unwrap().parse().unwrap()
}

async fn put_links(app: &TestApp, section: Uuid, links: Value) -> (StatusCode, Value) {
    let r = app
        .request(
            Method::PUT,
            &format!("/api/v1/sections/{section}/links"),
            Some(&app.admin_token),
        )
        .json(&json!({ "links": links }))
        .send()
        .await
        .expect("request");
    answer(r).await
}

#[tokio::test]
async fn catalog_shows_linked_sections_and_corequisites() {
    let app = TestApp::spawn().await;
    let term = app.open_term().await;
    app.admin_post(
        "/api/v1/courses",
        json!({"code": "math 2413", "title": "Calculus I", "credits": 4}),
    )
    .await;
    let course = app
        .admin_post(
            "/api/v1/courses",
            json!({"code": "PHYS2425", "title": "University Physics I", "credits": 4,
                   "components": ["lecture", "lab", "recitation"],
                   "corequisites": ["math-2413", "MATH2413"]}),
        )
        .await;
    assert_eq!(
        course["components"],
        json!(["lecture", "lab", "recitation"])
    );
    assert_eq!(course["corequisites"], json!(["MATH2413"]));

    let lec = section(&app, term, "PHYS2425", "001", json!({})).await;
    assert_eq!(lec["component"], "lecture");
    assert_eq!(lec["links"], json!([]));
    let lec = id(&lec);
    let lab = section(
        &app,
        term,
        "PHYS2425",
        "L01",
        json!({"component": "lab", "links": [lec]}),
    )
    .await;
    assert_eq!(lab["component"], "lab");
    assert_eq!(lab["links"], json!([lec]));
    let lab = id(&lab);
    let rec = id(&section(
        &app,
        term,
        "PHYS2425",
        "R01",
        json!({"component": "recitation"}),
    )
    .await);

    // The lecture shows the lab linked from the lab's side.
    let view = app.section_view(lec).await;
    assert_eq!(view["component"], "lecture");
    assert_eq!(view["links"], json!([lab]));
    assert_eq!(view["components"], json!(["lecture", "lab", "recitation"]));
    assert_eq!(view["corequisites"], json!(["MATH2413"]));

    // Links replaced from the lecture's side: lab and recitation.
    let (status, body) = put_links(&app, lec, json!([rec, lab, rec])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut links: Vec<String> = body["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    links.sort();
    let mut want = vec![lab.to_string(), rec.to_string()];
    want.sort();
    assert_eq!(links, want);
    assert_eq!(app.section_view(rec).await["links"], json!([lec]));
    let page = app
        .get_json(
            &format!("/api/v1/terms/{term}/sections?course=PHYS2425"),
            None,
        )
        .await;
    let listed: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["component"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["lecture", "lab", "recitation"]);

    // Unlinking the lab from its side leaves the lecture with the recitation only.
    let (status, body) = put_links(&app, lab, json!([])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["links"], json!([]));
    assert_eq!(app.section_view(lec).await["links"], json!([rec]));

    // A plain course answers the defaults.
    app.course("CS101", 3, &[]).await;
    let plain = section(&app, term, "CS101", "01", json!({})).await;
    assert_eq!(plain["component"], "lecture");
    assert_eq!(plain["components"], json!([]));
    assert_eq!(plain["corequisites"], json!([]));
    app.stop().await;
}

#[tokio::test]
async fn catalog_refuses_links_and_components_the_rules_do_not_allow() {
    let app = TestApp::spawn().await;
    let term = app.open_term().await;
    let other_term = app.open_term().await;
    let token = app.admin_token.clone();
    let post = |path: &'static str, body: Value, status: StatusCode, code: &'static str| {
        let app = &app;
        let token = token.clone();
        async move {
            app.post_expect_problem(path, Some(&token), body, status, code)
                .await
        }
    };
    let bad = StatusCode::UNPROCESSABLE_ENTITY;
    for (components, why) in [
        (json!(["lecture", "kitchen"]), "kitchen"),
        (json!(["lecture", "lab", "lecture"]), "twice"),
        (
            json!(["lecture", "lab", "recitation", "seminar", "studio"]),
            "at most 4",
        ),
    ] {
        let body = post(
            "/api/v1/courses",
            json!({"code": "CHEM1411", "title": "Chem", "credits": 4, "components": components}),
            bad,
            "invalid_field",
        )
        .await;
        assert!(body["detail"].as_str().unwrap().contains(why), "{body}");
    }
    let body = post(
        "/api/v1/courses",
        json!({"code": "CHEM1411", "title": "Chem", "credits": 4, "corequisites": ["chem 1411"]}),
        bad,
        "invalid_field",
    )
    .await;
    assert!(
        body["detail"].as_str().unwrap().contains("own corequisite"),
        "{body}"
    );
    post(
        "/api/v1/courses",
        json!({"code": "CHEM1411", "title": "Chem", "credits": 4, "corequisites": ["not a code"]}),
        bad,
        "invalid_field",
    )
    .await;

    app.admin_post(
        "/api/v1/courses",
        json!({"code": "CHEM1411", "title": "General Chemistry I", "credits": 4,
               "components": ["lecture", "lab", "recitation"]}),
    )
    .await;
    app.admin_post(
        "/api/v1/courses",
        json!({"code": "BIOL1406", "title": "Biology I", "credits": 4, "components": ["lecture", "lab"]}),
    )
    .await;
    app.course("CS101", 3, &[]).await;
    let lec = id(&section(&app, term, "CHEM1411", "001", json!({})).await);
    let lec2 = id(&section(&app, term, "CHEM1411", "002", json!({})).await);
    let lab = id(&section(
        &app,
        term,
        "CHEM1411",
        "L01",
        json!({"component": "lab", "links": [lec]}),
    )
    .await);
    let rec = id(&section(
        &app,
        term,
        "CHEM1411",
        "R01",
        json!({"component": "recitation"}),
    )
    .await);
    let far = id(&section(
        &app,
        other_term,
        "CHEM1411",
        "L01",
        json!({"component": "lab"}),
    )
    .await);
    let bio = id(&section(&app, term, "BIOL1406", "001", json!({})).await);
    let cs = id(&section(&app, term, "CS101", "01", json!({})).await);

    let new = |code: &str, extra: Value| {
        let mut body = json!({"term_id": term, "course_code": "CHEM1411", "section_code": code, "capacity": 5});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let cases = [
        (
            new("S01", json!({"component": "studio"})),
            "invalid_field",
            "not one of them",
        ),
        (
            new("S02", json!({"component": "Lab"})),
            "invalid_field",
            "not a component",
        ),
        (
            new(
                "L02",
                json!({"component": "lab", "links": [Uuid::new_v4()]}),
            ),
            "unknown_reference",
            "no section",
        ),
        (
            new("L03", json!({"component": "lab", "links": [lab]})),
            "invalid_field",
            "a lab too",
        ),
        (
            new("L04", json!({"component": "lab", "links": [rec]})),
            "invalid_field",
            "primary",
        ),
        (
            new("L05", json!({"component": "lab", "links": [bio]})),
            "invalid_field",
            "same term",
        ),
        (
            new("L06", json!({"component": "lab", "links": [far]})),
            "invalid_field",
            "same term",
        ),
    ];
    for (body, code, why) in cases {
        let problem = post("/api/v1/sections", body.clone(), bad, code).await;
        assert!(
            problem["detail"].as_str().unwrap().contains(why),
            "{body} -> {problem}"
        );
    }
    // A refused section is not created.
    let page = app
        .get_json(
            &format!("/api/v1/terms/{term}/sections?course=CHEM1411"),
            None,
        )
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 4);
    // Sections of a course without components are not linked.
    let problem = post(
        "/api/v1/sections",
        json!({"term_id": term, "course_code": "CS101", "section_code": "02", "capacity": 5, "links": [cs]}),
        bad,
        "invalid_field",
    )
    .await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("no components"),
        "{problem}"
    );

    // The same rules after creation.
    let (status, body) = put_links(&app, lab, json!([lab])).await;
    assert_problem(status, &body, bad, "invalid_field");
    let (status, body) = put_links(&app, lec, json!([lec2])).await;
    assert_problem(status, &body, bad, "invalid_field");
    let (status, body) = put_links(&app, lec, json!([Uuid::new_v4()])).await;
    assert_problem(status, &body, bad, "unknown_reference");
    let (status, body) = put_links(&app, Uuid::new_v4(), json!([])).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND, "section_not_found");
    // A refused replacement keeps the links there were.
    assert_eq!(app.section_view(lab).await["links"], json!([lec]));
    // A lab may link to several lectures.
    let (status, body) = put_links(&app, lab, json!([lec, lec2])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["links"].as_array().unwrap().len(), 2);
    // Only an admin.
    let (_, student) = app.student().await;
    let r = app
        .request(
            Method::PUT,
            &format!("/api/v1/sections/{lab}/links"),
            Some(&student),
        )
        .json(&json!({"links": []}))
        .send()
        .await
        .expect("request");
    let (status, body) = answer(r).await;
    assert_problem(status, &body, StatusCode::FORBIDDEN, "forbidden");
    app.stop().await;
}
