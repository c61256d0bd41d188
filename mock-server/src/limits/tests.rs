use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;

use super::inject::path_matches;
use super::*;

/// 2025-06-15 12:26:40 UTC: an arbitrary instant well inside a day.
const T0: i64 = 1_750_000_000_000;
const SECOND: i64 = 1_000;

fn location(id: &str) -> RateKey {
    RateKey::Resource(id.to_string())
}

fn check(limiter: &Limiter, key: &RateKey, profile: Profile, now_ms: i64) -> Decision {
    limiter.check(key, profile, "pit-…abcd", "/contacts/abc", now_ms)
}

/// Sends `n` requests at `now_ms` and returns how many were allowed.
fn burst_of(limiter: &Limiter, key: &RateKey, profile: Profile, n: usize, now_ms: i64) -> usize {
    (0..n).filter(|_| check(limiter, key, profile, now_ms).allowed).count()
}

fn next_midnight_utc(now_ms: i64) -> i64 {
    (now_ms.div_euclid(DAY_MS) + 1) * DAY_MS
}

#[test]
fn the_twenty_sixth_request_in_a_window_is_refused_for_burst() {
    let limiter = Limiter::default();
    let key = location("loc-a");
    for i in 0..25u32 {
        let d = check(&limiter, &key, Profile::SANDBOX, T0 + i64::from(i) * 100);
        assert!(d.allowed, "request {} should be allowed", i + 1);
        assert_eq!(d.headers.remaining, 24 - i);
        assert_eq!(d.headers.daily_remaining, 10_000 - i - 1);
        assert_eq!(d.reason, None);
    }
    let refused = check(&limiter, &key, Profile::SANDBOX, T0 + 2_500);
    assert!(!refused.allowed);
    assert_eq!(refused.reason, Some(Refusal::Burst));
    assert_eq!(refused.headers.remaining, 0);
    assert_eq!(refused.headers.daily_remaining, 10_000 - 25, "a refusal consumes no quota");
    assert_eq!(refused.retry_after_secs, 8, "the first request leaves the window at T0 + 10 s");
}

#[test]
fn a_full_burst_is_available_again_one_window_later() {
    let limiter = Limiter::default();
    let key = location("loc-a");
    assert_eq!(burst_of(&limiter, &key, Profile::SANDBOX, 30, T0), 25);
    assert_eq!(burst_of(&limiter, &key, Profile::SANDBOX, 1, T0 + 9_999), 0);
    assert_eq!(burst_of(&limiter, &key, Profile::SANDBOX, 30, T0 + 10_000), 25);
}

#[test]
fn a_full_window_of_one_location_does_not_affect_another() {
    let limiter = Limiter::default();
    assert_eq!(burst_of(&limiter, &location("loc-a"), Profile::SANDBOX, 30, T0), 25);
    let other = check(&limiter, &location("loc-b"), Profile::SANDBOX, T0);
    assert!(other.allowed);
    assert_eq!(other.headers.remaining, 24);
}

#[test]
fn an_apps_traffic_for_a_location_is_counted_apart_from_its_pits() {
    let limiter = Limiter::default();
    let app = RateKey::App { client_id: "app-1".into(), resource: "loc-a".into() };
    assert_eq!(app.resource(), "loc-a");
    assert_eq!(burst_of(&limiter, &location("loc-a"), Profile::SANDBOX, 25, T0), 25);
    assert_eq!(burst_of(&limiter, &app, Profile::PRODUCTION, 100, T0), 100);
}

#[test]
fn a_rolling_window_frees_each_slot_one_window_after_its_request() {
    let limiter = Limiter::default();
    let key = location("loc-a");
    let profile = Profile { burst: 2, window_ms: 10_000, daily: 100 };
    assert!(check(&limiter, &key, profile, T0).allowed);
    assert!(check(&limiter, &key, profile, T0 + 4 * SECOND).allowed);
    let refused = check(&limiter, &key, profile, T0 + 9 * SECOND);
    assert_eq!(refused.reason, Some(Refusal::Burst));
    assert_eq!(refused.retry_after_secs, 1);
    let freed = check(&limiter, &key, profile, T0 + 10 * SECOND);
    assert!(freed.allowed);
    assert_eq!(freed.headers.remaining, 0, "the request of T0 + 4 s is still in the window");
    assert!(!check(&limiter, &key, profile, T0 + 13 * SECOND).allowed);
    assert!(check(&limiter, &key, profile, T0 + 14 * SECOND).allowed);
}

#[test]
fn a_fixed_window_frees_every_slot_at_the_window_boundary() {
    let limiter = Limiter::new(Settings { window: WindowKind::Fixed, ..Settings::default() });
    let key = location("loc-a");
    let start = T0 - T0.rem_euclid(10_000) + 9_000;
    assert_eq!(burst_of(&limiter, &key, Profile::SANDBOX, 25, start), 25);
    let refused = check(&limiter, &key, Profile::SANDBOX, start + 500);
    assert_eq!(refused.reason, Some(Refusal::Burst));
    assert_eq!(refused.retry_after_secs, 1, "the next window starts in 500 ms");
    assert_eq!(burst_of(&limiter, &key, Profile::SANDBOX, 30, start + 1_000), 25);
}

#[test]
fn two_hundred_concurrent_requests_admit_exactly_the_burst() {
    let limiter = Limiter::default();
    let key = location("loc-a");
    let allowed = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                let n = burst_of(&limiter, &key, Profile::SANDBOX, 25, T0);
                allowed.fetch_add(n, Ordering::Relaxed);
            });
        }
    });
    assert_eq!(allowed.load(Ordering::Relaxed), 25);
    assert_eq!(limiter.peek(&key, Profile::SANDBOX, T0).daily_remaining, 10_000 - 25);
}

#[test]
fn the_request_past_the_daily_quota_is_refused_until_midnight_utc() {
    let limiter = Limiter::default();
    let key = location("loc-a");
    let profile = Profile { burst: 1000, window_ms: 10_000, daily: 5 };
    assert_eq!(burst_of(&limiter, &key, profile, 5, T0), 5);
    let refused = check(&limiter, &key, profile, T0 + SECOND);
    assert!(!refused.allowed);
    assert_eq!(refused.reason, Some(Refusal::Daily));
    assert_eq!(refused.headers.daily_remaining, 0);
    assert_eq!(refused.headers.remaining, 995, "the window shows its true count");
    let midnight = next_midnight_utc(T0);
    assert_eq!(refused.retry_after_secs, ceil_secs(midnight - T0 - SECOND));
    assert!(!check(&limiter, &key, profile, midnight - 1).allowed);
    let next_day = check(&limiter, &key, profile, midnight);
    assert!(next_day.allowed);
    assert_eq!(next_day.headers.daily_remaining, 4);
}

#[test]
fn the_day_resets_at_midnight_of_the_configured_utc_offset() {
    let limiter = Limiter::new(Settings { day_reset_utc_offset_minutes: -300, ..Settings::default() });
    let key = location("loc-a");
    let profile = Profile { burst: 10, window_ms: 1_000, daily: 1 };
    let local_midnight = next_midnight_utc(T0) + 5 * 3_600_000;
    assert!(check(&limiter, &key, profile, next_midnight_utc(T0) - 1).allowed);
    assert!(
        !check(&limiter, &key, profile, next_midnight_utc(T0) + SECOND).allowed,
        "00:00 UTC is 19:00 at UTC-5: the same day"
    );
    let refused = check(&limiter, &key, profile, local_midnight - SECOND);
    assert_eq!(refused.reason, Some(Refusal::Daily));
    assert_eq!(refused.retry_after_secs, 1);
    assert!(check(&limiter, &key, profile, local_midnight).allowed);
}

#[test]
fn an_injected_rule_for_a_resource_refuses_its_next_requests_then_stops() {
    let limiter = Limiter::default();
    let key = location("loc-a");
    limiter.inject(Injection { target: Target::Resource("loc-a".into()), count: 3 });
    let app = RateKey::App { client_id: "app-1".into(), resource: "loc-a".into() };
    for k in [&key, &app, &key] {
        let d = check(&limiter, k, Profile::SANDBOX, T0);
        assert!(!d.allowed);
        assert_eq!(d.reason, Some(Refusal::Injected));
        assert_eq!(d.retry_after_secs, 10, "an injected refusal asks to wait one window");
    }
    assert!(check(&limiter, &key, Profile::SANDBOX, T0).allowed);
    assert!(limiter.injections().is_empty(), "a spent rule disappears");
}

#[test]
fn an_injected_rule_for_a_token_refuses_only_that_tokens_requests() {
    let limiter = Limiter::default();
    let key = location("loc-a");
    limiter.inject(Injection { target: Target::Token("pit-…1111".into()), count: 3 });
    let other = limiter.check(&key, Profile::SANDBOX, "pit-…2222", "/contacts/", T0);
    assert!(other.allowed, "another PIT of the same location is not affected");
    for _ in 0..3 {
        let d = limiter.check(&key, Profile::SANDBOX, "pit-…1111", "/contacts/", T0);
        assert_eq!(d.reason, Some(Refusal::Injected));
    }
    assert!(limiter.check(&key, Profile::SANDBOX, "pit-…1111", "/contacts/", T0).allowed);
}

#[test]
fn an_injected_rule_for_a_path_glob_refuses_only_matching_paths() {
    let limiter = Limiter::default();
    let key = location("loc-a");
    limiter.inject(Injection { target: Target::Path("/contacts/*".into()), count: 3 });
    let list = limiter.check(&key, Profile::SANDBOX, "fp", "/contacts/", T0);
    assert!(list.allowed, "`*` needs one segment");
    let nested = limiter.check(&key, Profile::SANDBOX, "fp", "/contacts/abc/notes", T0);
    assert!(nested.allowed, "`*` matches one segment only");
    for id in ["a", "b", "c"] {
        let d = limiter.check(&key, Profile::SANDBOX, "fp", &format!("/contacts/{id}"), T0);
        assert_eq!(d.reason, Some(Refusal::Injected));
    }
    assert!(limiter.check(&key, Profile::SANDBOX, "fp", "/contacts/d", T0).allowed);
}

#[test]
fn an_injected_refusal_consumes_no_quota_and_shows_nothing_left_in_the_window() {
    let limiter = Limiter::default();
    let key = location("loc-a");
    assert_eq!(burst_of(&limiter, &key, Profile::SANDBOX, 5, T0), 5);
    limiter.inject(Injection { target: Target::Resource("loc-a".into()), count: 10 });
    for _ in 0..10 {
        let d = check(&limiter, &key, Profile::SANDBOX, T0);
        assert_eq!(d.reason, Some(Refusal::Injected));
        // As a real 429 would show it; the daily count stays true.
        assert_eq!(d.headers.remaining, 0);
        assert_eq!(d.headers.daily_remaining, 10_000 - 5);
    }
    assert_eq!(burst_of(&limiter, &key, Profile::SANDBOX, 30, T0), 20);
}

#[test]
fn injected_rules_are_spent_oldest_first_and_can_be_withdrawn() {
    let limiter = Limiter::default();
    let first = limiter.inject(Injection { target: Target::Path("/**".into()), count: 1 });
    let second = limiter.inject(Injection { target: Target::Resource("loc-a".into()), count: 5 });
    assert_ne!(first, second);
    check(&limiter, &location("loc-a"), Profile::SANDBOX, T0);
    let left = limiter.injections();
    assert_eq!(left.len(), 1);
    assert_eq!((left[0].id, left[0].remaining), (second, 5));
    assert!(limiter.remove_injection(second));
    assert!(!limiter.remove_injection(second));
    assert!(check(&limiter, &location("loc-a"), Profile::SANDBOX, T0).allowed);
}

#[test]
fn path_globs_match_one_segment_with_a_star_and_any_rest_with_two() {
    assert!(path_matches("/contacts/*", "/contacts/abc"));
    assert!(path_matches("/contacts/*", "/contacts/abc?locationId=x"));
    assert!(!path_matches("/contacts/*", "/contacts/"));
    assert!(!path_matches("/contacts/*", "/contacts/abc/tasks"));
    assert!(path_matches("/contacts/*/tasks", "/contacts/abc/tasks"));
    assert!(path_matches("/contacts/**", "/contacts/"));
    assert!(path_matches("/contacts/**", "/contacts/abc/tasks/1"));
    assert!(path_matches("/**/tasks", "/contacts/abc/tasks"));
    assert!(path_matches("/contacts", "/contacts/"));
    assert!(!path_matches("/contacts", "/contacts/abc"));
    assert!(!path_matches("/contacts/*", "/opportunities/abc"));
}

#[test]
fn exhausting_the_daily_quota_shows_zero_remaining_until_the_next_day() {
    let limiter = Limiter::default();
    let key = location("loc-a");
    limiter.exhaust_daily(&key, Profile::SANDBOX, T0);
    let shown = limiter.peek(&key, Profile::SANDBOX, T0);
    assert_eq!(shown.daily_remaining, 0);
    assert_eq!(shown.remaining, 25, "the burst window is untouched");
    let refused = check(&limiter, &key, Profile::SANDBOX, T0 + SECOND);
    assert_eq!(refused.reason, Some(Refusal::Daily));
    let next_day = check(&limiter, &key, Profile::SANDBOX, next_midnight_utc(T0));
    assert!(next_day.allowed);
    assert_eq!(next_day.headers.daily_remaining, 9_999);
}

#[test]
fn setting_burst_remaining_shows_in_the_headers_and_frees_slots_one_window_later() {
    let limiter = Limiter::default();
    let key = location("loc-a");
    limiter.set_burst_remaining(&key, Profile::SANDBOX, 2, T0);
    assert_eq!(limiter.peek(&key, Profile::SANDBOX, T0).remaining, 2);
    assert_eq!(limiter.peek(&key, Profile::SANDBOX, T0).daily_remaining, 10_000, "the day's count is untouched");
    assert_eq!(check(&limiter, &key, Profile::SANDBOX, T0 + SECOND).headers.remaining, 1);
    assert_eq!(check(&limiter, &key, Profile::SANDBOX, T0 + SECOND).headers.remaining, 0);
    let refused = check(&limiter, &key, Profile::SANDBOX, T0 + 2 * SECOND);
    assert_eq!(refused.reason, Some(Refusal::Burst));
    assert_eq!(refused.retry_after_secs, 8);
    let later = check(&limiter, &key, Profile::SANDBOX, T0 + 10 * SECOND);
    assert!(later.allowed);
    assert_eq!(later.headers.remaining, 25 - 2 - 1, "the two real requests are still in the window");

    limiter.set_burst_remaining(&key, Profile::SANDBOX, 0, T0 + 20 * SECOND);
    assert_eq!(check(&limiter, &key, Profile::SANDBOX, T0 + 20 * SECOND).reason, Some(Refusal::Burst));
    limiter.set_burst_remaining(&key, Profile::SANDBOX, 1_000, T0 + 20 * SECOND);
    assert_eq!(limiter.peek(&key, Profile::SANDBOX, T0 + 20 * SECOND).remaining, 25);
}

#[test]
fn peeking_shows_the_state_without_counting_or_tracking() {
    let limiter = Limiter::default();
    let key = location("loc-a");
    let fresh = limiter.peek(&key, Profile::PRODUCTION, T0);
    assert_eq!(
        fresh,
        RateHeaders { limit_daily: 200_000, daily_remaining: 200_000, interval_ms: 10_000, max: 100, remaining: 100 }
    );
    assert_eq!(limiter.resources(), 0);
    check(&limiter, &key, Profile::PRODUCTION, T0);
    assert_eq!(limiter.peek(&key, Profile::PRODUCTION, T0).remaining, 99);
    assert_eq!(limiter.peek(&key, Profile::PRODUCTION, T0).remaining, 99);
    assert_eq!(limiter.peek(&key, Profile::PRODUCTION, T0 + 10 * SECOND).remaining, 100);
}

#[test]
fn sweeping_drops_idle_resources_and_keeps_busy_ones() {
    let limiter = Limiter::default();
    check(&limiter, &location("idle"), Profile::SANDBOX, T0);
    limiter.exhaust_daily(&location("exhausted"), Profile::SANDBOX, T0 + 1_000);
    let later = T0 + DAY_MS + 10 * SECOND + 1;
    check(&limiter, &location("busy"), Profile::SANDBOX, later - 1);
    assert_eq!(limiter.resources(), 3);
    limiter.sweep(later);
    assert_eq!(limiter.resources(), 2, "only the idle one is dropped");
    limiter.sweep(later + 1_000);
    assert_eq!(limiter.resources(), 1);
    assert_eq!(limiter.peek(&location("busy"), Profile::SANDBOX, later).remaining, 24);
}

#[test]
fn checking_sweeps_from_time_to_time_so_memory_stays_bounded() {
    let limiter = Limiter::default();
    for day in 0..5 {
        let now = T0 + day * 2 * DAY_MS;
        for i in 0..SWEEP_EVERY {
            check(&limiter, &location(&format!("loc-{day}-{}", i % 100)), Profile::SANDBOX, now);
        }
    }
    assert!(limiter.resources() <= 200, "{} counters tracked", limiter.resources());
}

#[test]
fn requests_in_one_millisecond_each_count_and_the_window_keeps_one_entry_per_millisecond() {
    let limiter = Limiter::default();
    let key = location("loc-a");
    let profile = Profile { burst: 1_000_000, window_ms: 10_000, daily: u32::MAX };
    for ms in 0..10 {
        for _ in 0..1_000 {
            assert!(check(&limiter, &key, profile, T0 + ms).allowed);
        }
    }
    let last = check(&limiter, &key, profile, T0 + 9);
    assert_eq!(last.headers.remaining, 1_000_000 - 10_001);
    assert_eq!(limiter.window_entries(&key), Some(10), "ten milliseconds, ten entries");
    // The first millisecond's thousand leave together, one window later.
    assert_eq!(check(&limiter, &key, profile, T0 + 10_000).headers.remaining, 1_000_000 - 9_002);
}

#[test]
fn a_full_window_drops_its_oldest_requests_from_inside_a_millisecond() {
    let limiter = Limiter::default();
    let key = location("loc-a");
    let profile = Profile { burst: 5, window_ms: 10_000, daily: u32::MAX };
    let settings = Settings { count_refused: true, ..Settings::default() };
    let counting = Limiter::new(settings);
    // Three at T0, three at T0 + 1 s: with refusals counted, the window keeps the newest five.
    for at in [T0, T0, T0, T0 + SECOND, T0 + SECOND, T0 + SECOND] {
        check(&counting, &key, profile, at);
        check(&limiter, &key, profile, at);
    }
    let refused = check(&counting, &key, profile, T0 + 2 * SECOND);
    assert!(!refused.allowed);
    // Kept: T0, T0 + 1 s (x3), T0 + 2 s; the oldest kept leaves at T0 + 10 s.
    assert_eq!(refused.retry_after_secs, 8);
    assert_eq!(
        check(&counting, &key, profile, T0 + 10 * SECOND).headers.remaining,
        0,
        "T0's last left; T0 + 10 s took its place"
    );
    // Not counting refusals: the sixth was refused and the window holds five.
    assert_eq!(check(&limiter, &key, profile, T0 + 2 * SECOND).reason, Some(Refusal::Burst));
}

#[test]
fn a_clock_moved_back_counts_its_request_in_time_order() {
    let limiter = Limiter::default();
    let key = location("loc-a");
    let profile = Profile { burst: 3, window_ms: 10_000, daily: u32::MAX };
    check(&limiter, &key, profile, T0 + 5 * SECOND);
    check(&limiter, &key, profile, T0 + 5 * SECOND);
    // Back by four seconds: this request is the oldest of the three.
    check(&limiter, &key, profile, T0 + SECOND);
    let refused = check(&limiter, &key, profile, T0 + 2 * SECOND);
    assert_eq!(refused.reason, Some(Refusal::Burst));
    assert_eq!(refused.retry_after_secs, 9, "the request at T0 + 1 s leaves at T0 + 11 s");
    assert_eq!(limiter.window_entries(&key), Some(2), "two milliseconds");
    assert_eq!(check(&limiter, &key, profile, T0 + 11 * SECOND).headers.remaining, 0, "one left, one came");
}

#[test]
fn clearing_forgets_counters_and_injected_rules() {
    let limiter = Limiter::default();
    let key = location("loc-a");
    assert_eq!(burst_of(&limiter, &key, Profile::SANDBOX, 30, T0), 25);
    limiter.inject(Injection { target: Target::Resource("loc-a".into()), count: 3 });
    limiter.clear();
    assert_eq!(limiter.resources(), 0);
    assert!(limiter.injections().is_empty());
    assert!(check(&limiter, &key, Profile::SANDBOX, T0).allowed);
}

#[test]
fn a_disabled_limiter_never_refuses_but_still_counts() {
    let limiter = Limiter::new(Settings { enabled: false, ..Settings::default() });
    let key = location("loc-a");
    for _ in 0..30 {
        let d = check(&limiter, &key, Profile::SANDBOX, T0);
        assert!(d.allowed);
        assert_eq!(d.reason, None);
        assert_eq!(d.retry_after_secs, 0);
    }
    let shown = limiter.peek(&key, Profile::SANDBOX, T0);
    assert_eq!((shown.remaining, shown.daily_remaining), (0, 10_000 - 30));
    limiter.inject(Injection { target: Target::Resource("loc-a".into()), count: 1 });
    assert_eq!(
        check(&limiter, &key, Profile::SANDBOX, T0).reason,
        Some(Refusal::Injected),
        "a rule a test injected still applies"
    );
}

#[test]
fn refused_requests_consume_no_quota_by_default_but_do_when_counted() {
    let profile = Profile { burst: 2, window_ms: 10_000, daily: 100 };
    let key = location("loc-a");
    for count_refused in [false, true] {
        let limiter = Limiter::new(Settings { count_refused, ..Settings::default() });
        assert_eq!(burst_of(&limiter, &key, profile, 2, T0), 2);
        assert!(!check(&limiter, &key, profile, T0 + 5 * SECOND).allowed);
        let refused = check(&limiter, &key, profile, T0 + 6 * SECOND);
        assert_eq!(refused.reason, Some(Refusal::Burst));
        let expected_daily = if count_refused { 96 } else { 98 };
        assert_eq!(refused.headers.daily_remaining, expected_daily, "count_refused: {count_refused}");
        let after_window = check(&limiter, &key, profile, T0 + 10 * SECOND);
        assert_eq!(
            after_window.allowed, !count_refused,
            "a client that kept firing is kept out only when refusals count"
        );
        if count_refused {
            assert_eq!(
                after_window.retry_after_secs, 6,
                "this refusal and the one at T0 + 6 s fill the window until T0 + 16 s"
            );
        }
    }
}

#[test]
fn settings_read_from_config_fall_back_to_the_defaults() {
    let empty: Settings = serde_json::from_str("{}").unwrap();
    assert_eq!(empty, Settings::default());
    assert_eq!(empty.window, WindowKind::Rolling);
    assert!(empty.enabled && !empty.count_refused);
    let fixed: Settings = serde_json::from_str(r#"{"window":"fixed","day_reset_utc_offset_minutes":60}"#).unwrap();
    assert_eq!(fixed.window, WindowKind::Fixed);
    assert_eq!(fixed.day_reset_utc_offset_minutes, 60);
    assert!(fixed.enabled);
    let rule: Injection = serde_json::from_str(r#"{"target":{"path":"/contacts/*"},"count":3}"#).unwrap();
    assert_eq!(rule.target, Target::Path("/contacts/*".into()));
}

#[test]
fn the_headers_carry_highlevels_names() {
    let headers = Limiter::default().peek(&location("loc-a"), Profile::SANDBOX, T0);
    let pairs = headers.pairs();
    let names: Vec<_> = pairs.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        names,
        [
            "X-RateLimit-Limit-Daily",
            "X-RateLimit-Daily-Remaining",
            "X-RateLimit-Interval-Milliseconds",
            "X-RateLimit-Max",
            "X-RateLimit-Remaining",
        ]
    );
    let values: Vec<_> = pairs.iter().map(|(_, value)| value.as_str()).collect();
    assert_eq!(values, ["10000", "10000", "10000", "25", "25"]);
    // What an answer carries: the same names (HTTP/1.1 writes them lowercase) and values.
    let sent: Vec<(String, String)> =
        headers.header_values().iter().map(|(name, value)| (name.to_string(), value.to_string())).collect();
    let expected: Vec<(String, String)> =
        pairs.iter().map(|(name, value)| (name.to_lowercase(), value.clone())).collect();
    assert_eq!(sent, expected);
}

#[test]
fn the_profile_follows_the_environment() {
    assert_eq!(Profile::for_environment(Environment::Sandbox), Profile::SANDBOX);
    assert_eq!(Profile::for_environment(Environment::Production), Profile::PRODUCTION);
}

/// An independent statement of the rules: every counted request's time kept
/// in a plain list, every day's count in a map, and each answer computed by
/// filtering them.
struct Model {
    settings: Settings,
    profile: Profile,
    times: Vec<Vec<i64>>,
    days: HashMap<(usize, i64), u32>,
}

impl Model {
    fn step(&mut self, key: usize, now: i64) -> (bool, Option<Refusal>, RateHeaders, u64) {
        let w = i64::try_from(self.profile.window_ms).unwrap();
        let offset = i64::from(self.settings.day_reset_utc_offset_minutes) * 60_000;
        let day = (now + offset).div_euclid(DAY_MS);
        let kind = self.settings.window;
        let live = |times: &[i64]| -> Vec<i64> {
            let mut live: Vec<i64> = times
                .iter()
                .copied()
                .filter(|&t| match kind {
                    WindowKind::Rolling => now - t < w,
                    WindowKind::Fixed => t.div_euclid(w) == now.div_euclid(w),
                })
                .collect();
            live.sort_unstable();
            live
        };
        let burst = self.profile.burst as usize;
        let today = self.days.get(&(key, day)).copied().unwrap_or(0);
        let reason = if today >= self.profile.daily {
            Some(Refusal::Daily)
        } else if live(&self.times[key]).len() >= burst {
            Some(Refusal::Burst)
        } else {
            None
        };
        if reason.is_none() || self.settings.count_refused {
            self.times[key].push(now);
            *self.days.entry((key, day)).or_default() += 1;
        }
        let live = live(&self.times[key]);
        let today = self.days.get(&(key, day)).copied().unwrap_or(0);
        let headers = RateHeaders {
            limit_daily: self.profile.daily,
            daily_remaining: self.profile.daily.saturating_sub(today),
            interval_ms: self.profile.window_ms,
            max: self.profile.burst,
            remaining: (burst.saturating_sub(live.len())) as u32,
        };
        let wait_ms = match (reason, kind) {
            (None, _) | (Some(Refusal::Injected), _) => 0,
            (Some(Refusal::Daily), _) => (day + 1) * DAY_MS - offset - now,
            (Some(Refusal::Burst), WindowKind::Fixed) => (now.div_euclid(w) + 1) * w - now,
            (Some(Refusal::Burst), WindowKind::Rolling) => live[live.len() - burst] + w - now,
        };
        let retry = if wait_ms == 0 { 0 } else { (wait_ms as u64).div_ceil(1000) };
        (reason.is_none(), reason, headers, retry)
    }
}

fn keys() -> [RateKey; 3] {
    [location("loc-a"), location("loc-b"), RateKey::App { client_id: "app-1".into(), resource: "loc-a".into() }]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_limiter_agrees_with_a_reference_model(
        requests in prop::collection::vec((0usize..3, 0i64..4000), 1..300),
        fixed in any::<bool>(),
        count_refused in any::<bool>(),
        window_ms in prop_oneof![Just(1_000u64), Just(7_000), Just(10_000)],
        offset_minutes in -720i32..=840,
        before_midnight in 0i64..1_200_000,
    ) {
        let settings = Settings {
            window: if fixed { WindowKind::Fixed } else { WindowKind::Rolling },
            day_reset_utc_offset_minutes: offset_minutes,
            count_refused,
            enabled: true,
        };
        let profile = Profile { burst: 4, window_ms, daily: 30 };
        let limiter = Limiter::new(settings.clone());
        let mut model = Model { settings, profile, times: vec![Vec::new(); 3], days: HashMap::new() };
        // Start shortly before a local midnight so that many runs cross a day.
        let mut now = 20_000 * DAY_MS - i64::from(offset_minutes) * 60_000 - before_midnight;
        let keys = keys();
        for (i, (key, step)) in requests.into_iter().enumerate() {
            now += step;
            let decision = limiter.check(&keys[key], profile, "fp", "/contacts/", now);
            let (allowed, reason, headers, retry) = model.step(key, now);
            prop_assert_eq!(decision.allowed, allowed, "request {} at {}", i, now);
            prop_assert_eq!(decision.reason, reason, "request {}", i);
            prop_assert_eq!(decision.headers, headers, "request {}", i);
            prop_assert_eq!(decision.retry_after_secs, retry, "request {}", i);
        }
    }
}
