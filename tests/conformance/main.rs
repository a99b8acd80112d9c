//! The conformance suite: every behaviour of the specification
//! (`crates/stoppable/BEHAVIOUR.md`), seen from the
//! client side on real loopback sockets, run once per runtime.

mod app;
mod cases;
mod client;
#[path = "../support/defer_accept.rs"]
mod defer_accept;
mod fresh_state_cases;
mod h2_raw;
mod http2;
mod http2_cases;
mod lines;
mod listeners_cases;
mod rollout_cases;
mod runtimes;
mod serving_cases;
mod shared_listener_cases;
mod task_cases;
mod tls;
mod tls_cases;
mod wait;

/// Calls `$suite!` with the list of every case.
macro_rules! all_cases {
    ($suite:ident, $runtime:ident) => {
        $suite!(
            $runtime:
            b1_connect_after_stop_is_refused,
            b1_queued_connections_are_served,
            b2_stop_before_first_poll_serves_the_queue_then_errors,
            b3_idle_keepalive_gets_eof_and_stop_does_not_wait,
            b3_fresh_connection_closes_after_window,
            b4_request_sent_just_before_stop_is_served,
            b4_first_request_within_window_is_served,
            b4_half_received_head_is_finished_and_served,
            b4_http2_connection_gets_the_window_for_its_first_stream,
            b5_split_response_in_flight_completes,
            b6_response_after_stop_says_close,
            b6_pipelined_request_is_never_dropped_silently,
            b6_request_pipelined_behind_a_response_begun_before_the_stop_is_served,
            b6_pipelined_head_received_in_part_with_the_first_is_served,
            b6_pipelined_head_begun_during_the_first_response_is_served,
            b6_pipelined_request_behind_many_chunks_is_served,
            b7_http2_streams_complete_after_goaway,
            b7_http2_client_that_never_acknowledges_goaway_is_closed,
            b7_fresh_http2_connection_gets_goaway_before_its_close,
            b7_client_opening_streams_after_goaway_cannot_hold_the_stop,
            b7_http2_preface_read_in_pieces_is_still_http2,
            b8_malformed_request_gets_400,
            b8_bad_input_during_a_drain_gets_errors_and_counts_stay_exact,
            b8_client_reset_mid_request_counts_as_closed,
            b8_slow_head_cannot_hold_the_stop,
            b8_connections_churning_during_a_drain_keep_counts_exact,
            b8_http2_garbage_after_preface_is_a_connection_error,
            b9_zero_grace_forces_at_once_fin_first,
            b9_grace_deadline_force_closes_hanging_handler,
            b9_client_that_never_reads_is_bounded_by_grace,
            b9_response_not_yet_delivered_at_the_deadline_is_forced,
            b9_force_close_reaches_a_connection_without_a_socket,
            b9_zero_grace_counts_a_queued_request_as_cut,
            b10_stop_ends_with_last_request_not_at_deadline,
            b11_report_counts_are_exact,
            b11_raw_work_begun_in_the_delay_and_cut_at_the_grace_is_not_graceful,
            b12_stop_twice_gives_one_report_and_shorter_grace_wins,
            b13_stop_from_inside_a_handler,
            b13_a_shutdown_future_starts_the_stop,
            b14_upgraded_connection_is_waited_for,
            b14_upgraded_connection_is_force_closed_at_deadline,
            b14_http2_tunnel_gets_goaway_and_is_waited_for,
            b15_websocket_gets_a_close_frame_when_the_drain_begins,
            b15_handlers_find_the_drain_signal_in_requests,
            b16_readiness_delay_serves_then_drains,
            b17_zero_grace_during_the_delay_forces_at_once,
            b18_live_counts_follow_connections,
            b19_no_task_left_after_stop,
            b19_serve_stop_cycles_leave_nothing,
            b20_line_in_progress_is_finished_and_idle_closes,
            b20_grace_force_closes_an_unfinished_line,
            b20_line_waiting_unread_at_the_stop_is_served,
            b21_delay_longer_than_header_timeout_keeps_an_http2_stream,
            b21_stop_ends_after_the_server_future_is_dropped,
            b21_stop_ends_after_a_panic_in_the_accept_loop,
            b21_request_queued_when_the_server_future_is_dropped_is_served,
            b21_handshake_under_way_when_the_server_future_is_dropped_is_served,
            b22_socket_held_by_another_owner_takes_connections_after_the_stop,
            b22_shared_listener_never_drops_a_connect_during_the_stop,
            b22_tcp_and_unix_listeners_are_both_served,
            b22_a_stop_during_a_handoff_leaves_the_socket_to_the_next_process,
            b22_a_failed_handoff_leaves_the_socket_to_this_process,
            b22_a_handoff_after_the_stop_refused_the_socket_is_an_error,
            b22_a_next_process_not_ready_in_time_is_asked_to_stop,
            b1_every_listener_queue_is_served_at_the_stop,
            b1_a_handshake_under_way_at_the_stop_is_served,
            b1_a_handshake_that_never_completes_cannot_hold_the_stop,
            a_connection_limit_pauses_accepting,
            b23_clients_are_asked_to_move_on_during_the_delay,
            b23_a_fresh_connection_is_not_closed_by_the_move_on,
            b23_a_connection_past_its_maximum_age_finishes_its_work_and_closes,
            b23_a_connection_that_sent_nothing_is_not_closed_for_its_age,
            b23_a_raw_connection_closes_between_units_at_its_age,
            b23_the_age_timer_ends_with_the_stop,
            b23_an_aged_connection_still_hears_the_drain,
            a_service_learns_its_connections_peer,
            an_axum_router_with_connect_info_is_served,
            a_connection_error_reaches_the_hook_with_the_peer,
            a_head_that_never_ends_is_closed_while_serving,
            an_idle_keep_alive_connection_is_closed_while_serving,
            tls_a_silent_handshake_is_closed_at_the_handshake_timeout,
            a_silent_connection_is_closed_while_serving,
            a_half_sent_http2_preface_is_closed_while_serving,
            tls_a_client_silent_after_its_handshake_is_closed_while_serving,
            tls_a_silent_handshake_is_closed_at_the_first_request_timeout,
            b3_an_idle_connection_after_an_lf_only_request_closes_at_once,
            b3_an_idle_connection_after_a_head_ended_by_a_lone_empty_line_closes_at_once,
            b5_an_http2_response_queued_for_a_slow_client_is_delivered_whole,
            b5_an_http2_response_waiting_for_the_clients_window_is_delivered_whole,
            b9_an_http2_response_the_client_never_lets_through_is_forced_at_the_grace,
            b7_a_101_answer_on_http2_does_not_hold_the_connection,
            b7_an_http2_tunnel_that_ended_does_not_hold_the_stop,
            b7_a_client_stalled_inside_a_headers_frame_does_not_hold_the_stop,
            b5_a_reset_not_yet_whole_leaves_the_response_owed,
            b11_a_head_cut_by_the_servers_timeout_during_the_stop_is_not_graceful,
            b24_a_tracked_task_holds_the_stop_until_it_ends,
            b24_a_task_running_at_the_grace_deadline_is_cancelled,
            tls_b3_idle_connection_gets_close_notify_at_stop,
            tls_b3_unfinished_handshake_closes_after_window,
            tls_b4_handshake_under_way_at_stop_is_served,
            tls_b7_http2_by_alpn_stream_completes_after_goaway,
            tls_b8_failed_handshake_keeps_counts_exact
        );
    };
}

/// One test per case for one runtime.
macro_rules! suite {
    ($runtime:ident: $($case:ident),* $(,)?) => {
        mod $runtime {
            $(
                #[test]
                fn $case() {
                    crate::cases::$case::<crate::runtimes::$runtime::Rt>();
                }
            )*
        }
    };
}

all_cases!(suite, tokio);
all_cases!(suite, tokio_tracker);
all_cases!(suite, smol);
all_cases!(suite, async_std);
