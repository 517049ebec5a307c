"""The compliance table (PICS style) of ``specs/compliance.md``.

Every feature of every Blue Book the stack covers is listed with its status and the tests that
show it. The tests are named by pytest node id (``tests/test_x.py::test_name``); the generator
checks that each one exists by parsing the test files (:func:`missing_tests`) and refuses to
build otherwise, so the table cannot point at a test that was renamed or removed. A feature
marked supported or partial must name at least one test; one marked not supported names none.
"""

from __future__ import annotations

import ast
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from linkstack.specgen.render import SpecBuildError, md_table

__all__ = ["BOOKS", "Book", "Feature", "Support", "compliance_page", "missing_tests"]


class Support(enum.Enum):
    SUPPORTED = "supported"
    PARTIAL = "partial"
    NOT_SUPPORTED = "not supported"


S, P, N = Support.SUPPORTED, Support.PARTIAL, Support.NOT_SUPPORTED


@dataclass(frozen=True)
class Feature:
    """One line of the table: a feature, where the Blue Book defines it, how far linkstack
    supports it and the tests that show it (pytest node ids)."""

    item: str
    feature: str
    section: str
    status: Support
    tests: tuple[str, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class Book:
    code: str
    title: str
    page: str
    features: tuple[Feature, ...]


def _t(file: str, *names: str) -> tuple[str, ...]:
    return tuple(f"tests/{file}::{name}" for name in names)


BOOKS: tuple[Book, ...] = (
    Book("CCSDS 133.0-B-2", "Space Packet Protocol", "space-packet.md", (
        Feature("SPP-1", "Primary header: every field encoded and decoded, interoperable with "
                "spacepackets", "§4.1.3", S,
                _t("test_spp_packet.py", "test_ccsds_facts_tc_vector",
                   "test_linkstack_encode_spacepackets_decode",
                   "test_spacepackets_encode_linkstack_decode",
                   "test_header_fast_path_agrees_with_construct")),
        Feature("SPP-2", "Packet data field of 1..65536 octets (packets up to 65542 octets)",
                "§4.1.4", S, _t("test_spp_packet.py", "test_largest_packet",
                                "test_encode_errors_name_the_field")),
        Feature("SPP-3", "Idle packets (APID 2047)", "§4.1.3.3.4", S,
                _t("test_spp_packet.py", "test_idle_packet")
                + _t("test_spp_stream.py", "test_idle_packets_recognised_and_dropped")),
        Feature("SPP-4", "Packet Sequence Count per APID, modulo 16384", "§4.1.3.4.3", S,
                _t("test_spp_segmentation.py", "test_counter_wraps_16383_to_0",
                   "test_counter_per_apid_and_reserve")),
        Feature("SPP-5", "Segmentation with the Sequence Flags and reassembly; gaps, duplicates "
                "and wrong order reported", "§4.1.3.4.2", S,
                _t("test_spp_segmentation.py", "test_segmenter_boundaries_and_flags",
                   "test_segmentation_reassembly_identity",
                   "test_drops_lose_exactly_the_affected_payloads",
                   "test_duplicates_are_reported_and_never_delivered_twice")),
        Feature("SPP-6", "Packet Secondary Header with a time code and ancillary data",
                "§4.1.4.2", S,
                _t("test_spp_packet.py", "test_secondary_header_cds_interop_both_ways",
                   "test_secondary_header_round_trip",
                   "test_secondary_header_ancillary_only_and_errors")),
        Feature("SPP-7", "Packets extracted from a byte stream, resynchronising after garbage",
                "§4.1", S,
                _t("test_spp_stream.py", "test_every_packet_and_exact_skips",
                   "test_agrees_with_spacepackets_parse_space_packets")),
        Feature("SPP-8", "Decoders raise typed errors naming field and offset", "§4.1", S,
                _t("test_spp_packet.py", "test_fuzz_decode_raises_only_linkstack_errors",
                   "test_decode_errors_name_field_and_offset")),
    )),
    Book("CCSDS 301.0-B-4", "Time Code Formats", "space-packet.md", (
        Feature("TIME-1", "CUC with explicit P-field (1..4 coarse, 0..3 fine octets)", "§3.2",
                S, _t("test_spp_timecode.py", "test_cuc_p_field_vectors",
                      "test_cuc_t_field_vector", "test_cuc_fraction_round_trip")),
        Feature("TIME-2", "CUC P-field extension (up to 7 coarse, 10 fine octets)", "§3.2.2", S,
                _t("test_spp_timecode.py", "test_cuc_p_field_extension_fast_path_agrees",
                   "test_cuc_non_canonical_p_field_is_kept_verbatim")),
        Feature("TIME-3", "CDS: 16/24-bit day, µs and ps resolution, leap second", "§3.3", S,
                _t("test_spp_timecode.py", "test_cds_short_vector_from_spacepackets_doctest",
                   "test_cds_short_interop_both_ways", "test_cds_leap_second_and_resolution")),
        Feature("TIME-4", "Implicit (preconfigured) P-field", "§3.2.1, §3.3.1", S,
                _t("test_spp_timecode.py", "test_implicit_p_field")),
        Feature("TIME-5", "CCS calendar segmented time code", "§3.4", N),
        Feature("TIME-6", "ASCII calendar segmented time codes", "§3.5", N),
    )),
    Book("CCSDS 232.0-B-4", "TC Space Data Link Protocol", "tc.md", (
        Feature("TC-1", "Primary header: every field, interoperable with SpacePyLibrary vectors",
                "§4.1.2", S,
                _t("test_frames_tc.py", "test_bitheader_agrees_with_construct",
                   "test_round_trip", "test_spacepy_vector_encode",
                   "test_spacepy_vector_decode_and_reassemble")),
        Feature("TC-2", "Transfer Frame Version Number checked", "§4.1.2.2", S,
                _t("test_frames_tc.py", "test_version_number_checked")),
        Feature("TC-3", "Frame types AD, BD, BC; the invalid combination refused", "§4.1.2.3",
                S, _t("test_frames_tc.py", "test_invalid_frame_type_is_a_typed_error")),
        Feature("TC-4", "Frame length up to 1024 octets; managed maximum enforced", "§4.1.2.8",
                S, _t("test_frames_tc.py", "test_maximum_frame_length_1024",
                      "test_smaller_managed_maximum_is_enforced_on_decode")),
        Feature("TC-5", "Frame Error Control Field (CRC-16)", "§4.1.4", S,
                _t("test_frames_tc.py", "test_flipped_bit_caught_by_fecf")
                + _t("test_foundation.py", "test_crc16_check_value")),
        Feature("TC-6", "Segment Header: MAP multiplexing, segmentation and reassembly",
                "§4.1.3.2", S,
                _t("test_frames_tc.py", "test_segmentation_round_trip",
                   "test_segmentation_through_frames", "test_map_id_routing_interleaved",
                   "test_wrong_order_is_reported_not_glued",
                   "test_lost_middle_segment_is_detected")),
        Feature("TC-7", "Segment Header presence as a managed parameter per VC", "§5", S,
                _t("test_frames_tc.py", "test_segment_header_managed_parameter_is_enforced")),
        Feature("TC-8", "Control commands Unlock and Set V(R)", "§4.1.3.3", S,
                _t("test_frames_tc.py", "test_bc_control_commands",
                   "test_random_bytes_into_bc_parser")),
        Feature("TC-9", "Fill after the frame (from the CLTU) ignored by the Frame Length",
                "§4.1.2.8", S, _t("test_frames_tc.py", "test_trailing_fill_is_ignored")),
        Feature("TC-10", "Decoders raise typed errors naming field and offset", "§4.1", S,
                _t("test_frames_tc.py", "test_random_bytes_raise_only_linkstack_errors",
                   "test_truncated_inputs")),
        Feature("TC-11", "Virtual channel and MAP multiplexing of TC frames, MAP segmentation",
                "§4.2, §4.3", S,
                _t("test_mux_tc.py", "test_segmented_round_trip",
                   "test_lost_segment_is_reported_not_glued"),
                note="one packet or segment per frame (no blocking)"),
        Feature("TC-12", "Space Data Link Security header and trailer", "§4.1.3.1", N),
    )),
    Book("CCSDS 232.1-B-2", "Communications Operation Procedure-1", "clcw-cop1.md", (
        Feature("COP-1", "FOP-1 state table: 50 events × 6 states (incl. Rev. B E101–E104)",
                "§5.3, table 5-1", S,
                _t("test_fop1.py", "test_expected_table_is_complete", "test_table_row",
                   "test_row_behaviour")),
        Feature("COP-2", "FOP sliding window K and the one-place Wait_Queue", "§5.1.4, §5.1.7",
                S, _t("test_fop1.py",
                      "test_window_limits_outstanding_frames_and_wait_queue_holds_one")),
        Feature("COP-3", "Go-back-N retransmission driven by the CLCW", "§5.2.7", S,
                _t("test_fop1.py", "test_go_back_n_retransmission_driven_by_clcw")),
        Feature("COP-4", "Timer T1, Transmission_Limit, Timeout_Type (alert or suspend)",
                "§5.1, §5.2.16", S,
                _t("test_fop1.py", "test_timer_retransmits_then_alerts_at_the_limit",
                   "test_suspend_and_resume")),
        Feature("COP-5", "Initiate AD service without/with CLCW check, with Unlock, with Set "
                "V(R); BC frame retransmission", "§5.3 E23–E28", S,
                _t("test_fop1.py", "test_initiate_with_set_vr_completes_on_clcw",
                   "test_bc_control_commands",
                   "test_bc_frame_retransmitted_on_timer_then_negative_confirm")),
        Feature("COP-6", "Management directives and invalid directives", "§5.3 E29–E40", S,
                _t("test_fop1.py", "test_invalid_directive_qualifiers_are_e40",
                   "test_setting_a_parameter_keeps_the_pending_initiate_directive")),
        Feature("COP-7", "Lower Procedures accept/reject (AD_Out, BC_Out, BD_Out)",
                "§5.3 E41–E46", S,
                _t("test_fop1.py", "test_immediate_lower_accept_runs_e41",
                   "test_explicit_lower_accept_paces_frames")),
        Feature("COP-8", "Modulo-256 sequence arithmetic", "§5.2.1", S,
                _t("test_fop1.py", "test_sequence_numbers_wrap_modulo_256")),
        Feature("COP-9", "CLCWs of other VCs ignored", "§5.3.2", S,
                _t("test_fop1.py", "test_clcw_of_another_vc_is_not_for_this_fop")),
        Feature("COP-10", "FARM-1 state table: 11 events × 3 states", "§6.3, table 6-1", S,
                _t("test_farm1.py", "test_table_row", "test_row_behaviour")),
        Feature("COP-11", "FARM-1 sliding window: positive, negative window, lockout area",
                "§6.1.8", S, _t("test_farm1.py", "test_window_classification_all_256_values")),
        Feature("COP-12", "FARM-1 Wait state and buffer release", "§6.1.3", S,
                _t("test_farm1.py", "test_wait_and_buffer_release")),
        Feature("COP-13", "Lockout, Unlock and Set V(R)", "§6.2", S,
                _t("test_farm1.py", "test_lockout_then_unlock_then_set_vr")
                + _t("test_arq_properties.py", "test_lockout_then_unlock_resumes_cleanly")),
        Feature("COP-14", "CLCW generation (report value, flags, FARM-B counter)", "§6.2", S,
                _t("test_farm1.py", "test_in_sequence_delivery_and_clcw")),
        Feature("COP-15", "Every AD FDU delivered once and in order over a lossy link",
                "§2.2", S,
                _t("test_arq_properties.py", "test_cop1_exactly_once_in_order",
                   "test_fop1_random_inputs_keep_invariants")),
        Feature("COP-16", "COP-1 over USLP (VC Frame Count as N(S); UPID 1 for control "
                "commands; the CLCW back in a TM or USLP OCF)", "§1.2; 732.1-B-2 §4.1.2", S,
                _t("test_cop1_frames.py", "test_every_frame_type_comes_back",
                   "test_uslp_header_fields_per_frame_type",
                   "test_uslp_frames_that_cannot_be_cop1_are_rejected_naming_the_field")
                + _t("test_hops.py", "test_rf_cop1_delivers_exactly_once_in_order",
                     "test_rf_uslp_uplink_carries_long_frames_and_sets_vcf_counts",
                     "test_idle_downlink_frames_still_bring_the_clcw_down")),
    )),
    Book("CCSDS 132.0-B-3", "TM Space Data Link Protocol", "tm.md", (
        Feature("TM-1", "Primary header: every field, interoperable with spacepackets",
                "§4.1.2", S,
                _t("test_frames_tm.py", "test_bitheader_agrees_with_construct",
                   "test_encode_matches_spacepackets", "test_decode_of_spacepackets_frame",
                   "test_spacepackets_decodes_linkstack_frame")),
        Feature("TM-2", "First Header Pointer with its special values 0x7FF and 0x7FE",
                "§4.1.2.7.6", S,
                _t("test_frames_tm.py", "test_fhp_special_values")
                + _t("test_mux_zone.py", "test_fhp_points_at_first_header_and_special_values")),
        Feature("TM-3", "Transfer Frame Secondary Header", "§4.1.3", S,
                _t("test_frames_tm.py", "test_secondary_header_id_agrees_with_construct",
                   "test_frame_with_clcw_and_secondary_header")),
        Feature("TM-4", "Operational Control Field carrying the CLCW", "§4.1.5", S,
                _t("test_frames_tm.py", "test_frame_with_clcw_and_secondary_header")
                + _t("test_mux_tm.py", "test_multiplex_demultiplex_round_trip")),
        Feature("TM-5", "Frame Error Control Field (CRC-16)", "§4.1.6", S,
                _t("test_frames_tm.py", "test_flipped_bit_caught_by_fecf")),
        Feature("TM-6", "Fixed frame length per physical channel, up to 2048 octets", "§4.1.1",
                S, _t("test_frames_tm.py", "test_2048_octet_frame",
                      "test_data_field_capacity")),
        Feature("TM-7", "Segment Length Identifier 11 when the Synchronization Flag is 0",
                "§4.1.2.7.5", S, _t("test_frames_tm.py", "test_segment_length_id_rule")),
        Feature("TM-8", "Virtual Channel Packet service: packets spanning frames",
                "§3.3, §4.1.4", S,
                _t("test_mux_zone.py", "test_spanning_round_trip")
                + _t("test_frames_tm.py", "test_split_packet_zone")),
        Feature("TM-9", "Idle data: idle packets and Only Idle Data frames", "§4.1.4", S,
                _t("test_mux_zone.py", "test_idle_fill_shorter_than_a_packet_spans_next_zone")
                + _t("test_mux_tm.py", "test_idle_frames_and_priority")),
        Feature("TM-10", "Master and virtual channel frame counts; gaps name the lost packets",
                "§4.1.2.5, §4.1.2.6", S,
                _t("test_mux_zone.py", "test_frame_gaps_are_reported_and_name_lost_packets")
                + _t("test_mux_tm.py", "test_corrupt_frame_is_rejected_and_its_packets_named")),
        Feature("TM-11", "Virtual channel multiplexing (priority, weighted round robin)",
                "§4.2", S,
                _t("test_mux_zone.py", "test_priority_scheduler", "test_weighted_round_robin")),
        Feature("TM-12", "Frames of another spacecraft rejected", "§4.3", S,
                _t("test_mux_tm.py", "test_wrong_spacecraft_rejected")),
        Feature("TM-13", "Synchronization Flag 1 (VCA service)", "§3.4", P,
                _t("test_frames_tm.py", "test_round_trip"),
                note="frames with the flag set encode and decode; no VCA service above them"),
        Feature("TM-14", "Space Data Link Security", "§4.1.4", N),
    )),
    Book("CCSDS 732.0-B-4", "AOS Space Data Link Protocol", "aos.md", (
        Feature("AOS-1", "Primary header: every field", "§4.1.2", S,
                _t("test_frames_aos.py", "test_bitheader_agrees_with_construct",
                   "test_round_trip")),
        Feature("AOS-2", "Frame Header Error Control: RS(10,6) over GF(16), encode and correct "
                "up to 2 nibbles", "§4.1.2.6", S,
                _t("test_frames_aos.py", "test_fhec_yamcs_vectors",
                   "test_generator_matches_galois", "test_fhec_parity_matches_galois",
                   "test_fhec_corrects_up_to_two_nibbles",
                   "test_fhec_three_or_four_errors_never_pass_silently")),
        Feature("AOS-3", "FHEC and FECF together (corrections re-checked by the FECF)",
                "§4.1.2.6", S,
                _t("test_frames_aos.py", "test_fhec_corrects_header_errors_in_frames",
                   "test_fhec_with_fecf_does_not_hide_data_errors",
                   "test_fhec_inconsistent_with_good_fecf")),
        Feature("AOS-4", "Insert Zone", "§4.1.3", S,
                _t("test_frames_aos.py", "test_round_trip")
                + _t("test_cli_frame.py", "test_decode_aos_with_fhec_insert_zone_ocf")),
        Feature("AOS-5", "M_PDU (packet service)", "§4.1.4.2", S,
                _t("test_frames_aos.py", "test_m_pdu_frame_with_packets_and_clcw",
                   "test_data_unit_headers_agree_with_construct")),
        Feature("AOS-6", "B_PDU (bitstream service) and idle VC 63", "§4.1.4.3", S,
                _t("test_frames_aos.py", "test_idle_vc_and_bpdu")),
        Feature("AOS-7", "VCA_SDU data field", "§4.1.4.4", S,
                _t("test_frames_aos.py", "test_round_trip")),
        Feature("AOS-8", "Operational Control Field per VC (managed)", "§4.1.5", S,
                _t("test_frames_aos.py", "test_m_pdu_frame_with_packets_and_clcw")),
        Feature("AOS-9", "Frame Error Control Field (CRC-16)", "§4.1.6", S,
                _t("test_frames_aos.py", "test_flipped_bit_caught_by_fecf")),
        Feature("AOS-10", "Decoders raise typed errors naming field and offset", "§4.1", S,
                _t("test_frames_aos.py", "test_decode_errors_name_fields",
                   "test_random_bytes_raise_only_linkstack_errors")),
        Feature("AOS-11", "Virtual channel multiplexing of AOS frames (M_PDU, idle VC 63)",
                "§4.2", S,
                _t("test_mux_aos_uslp.py", "test_aos_round_trip",
                   "test_aos_idle_frames_counts_and_rejection")),
    )),
    Book("CCSDS 732.1-B-2", "Unified Space Data Link Protocol", "uslp.md", (
        Feature("USLP-1", "Non-truncated primary header: every field, interoperable with "
                "spacepackets", "§4.1.2", S,
                _t("test_frames_uslp.py", "test_bitheaders_agree_with_construct",
                   "test_facts_vector", "test_encode_matches_spacepackets",
                   "test_spacepackets_decodes_linkstack_frame")),
        Feature("USLP-2", "Truncated primary header", "§4.1.2.6", S,
                _t("test_frames_uslp.py", "test_truncated_frames")),
        Feature("USLP-3", "Fixed- and variable-length frames", "§4.1.1", S,
                _t("test_frames_uslp.py", "test_limits", "test_rules_must_match_frame_type")),
        Feature("USLP-4", "TFDF header; packets spanning frames with the FHP (rule 000)",
                "§4.1.4.2", S,
                _t("test_frames_uslp.py", "test_tfdf_header_agrees_with_construct",
                   "test_packets_spanning_frames_rule_000")),
        Feature("USLP-5", "Octet stream (rule 011)", "§4.1.4.2.2", S,
                _t("test_frames_uslp.py", "test_octet_stream_rule_011")),
        Feature("USLP-6", "MAPA_SDU and segment rules (001, 010, 100–110)", "§4.1.4.2.2", P,
                _t("test_frames_uslp.py", "test_round_trip"),
                note="headers encode and decode; no MAP segmentation service above them"),
        Feature("USLP-7", "Insert Zone and Operational Control Field", "§4.1.3, §4.1.5", S,
                _t("test_frames_uslp.py", "test_round_trip")),
        Feature("USLP-8", "FECF: CRC-16 or CRC-32, checked before the header is believed",
                "§4.1.6", S,
                _t("test_frames_uslp.py", "test_crc32_fecf_matches_independent_crc",
                   "test_crc32_check_value", "test_flipped_bit_caught_by_fecf",
                   "test_fixed_length_fecf_checked_before_header")),
        Feature("USLP-9", "Decoders raise typed errors naming field and offset", "§4.1", S,
                _t("test_frames_uslp.py", "test_random_bytes_raise_only_linkstack_errors",
                   "test_decode_errors")),
        Feature("USLP-10", "COP-1 / COP-P over USLP", "§4.1.2.8", N),
        Feature("USLP-11", "VC and MAP multiplexing of USLP frames (packets, rule 000)", "§4.2",
                S, _t("test_mux_aos_uslp.py", "test_uslp_round_trip_over_maps",
                      "test_uslp_lost_frame_is_reported_never_glued")),
    )),
    Book("CCSDS 131.0-B-3", "TM Synchronization and Channel Coding", "tm-coding.md", (
        Feature("TMC-1", "Attached Sync Marker 1ACFFC1D", "§8", S,
                _t("test_asm_sync.py", "test_asm_value", "test_attach_asm_array")),
        Feature("TMC-2", "Frame synchronization: search, check, lock at any bit offset", "§8",
                S, _t("test_asm_sync.py", "test_state_transitions_search_check_lock",
                      "test_recovers_every_cadu_at_random_bit_offsets")),
        Feature("TMC-3", "Flywheel over damaged markers; bit slips; inverted polarity", "§8", S,
                _t("test_asm_sync.py", "test_flywheel_rides_over_a_damaged_marker",
                   "test_deleted_bit_is_a_negative_slip",
                   "test_inverted_stream_needs_detect_inverted")),
        Feature("TMC-4", "Reed-Solomon RS(255,223), E = 16", "§4", S,
                _t("test_rs.py", "test_published_vector_e16_conventional",
                   "test_published_vector_e16_dual_basis",
                   "test_random_data_against_reedsolo")),
        Feature("TMC-5", "Reed-Solomon RS(255,239), E = 8", "§4", S,
                _t("test_rs.py", "test_published_vector_e8_conventional")),
        Feature("TMC-6", "Dual-basis symbol representation", "§4.2", S,
                _t("test_gf256.py", "test_dual_basis_spot_values")
                + _t("test_rs.py", "test_dual_basis_codeword_fails_conventional_check")),
        Feature("TMC-7", "Interleaving depths 1, 2, 3, 4, 5, 8", "§4.3", S,
                _t("test_rs.py", "test_burst_up_to_i_times_e_is_corrected",
                   "test_batch_agrees_with_single")),
        Feature("TMC-8", "Virtual fill (shortened codes)", "§4.4", S,
                _t("test_rs.py", "test_published_vector_e16_shortened",
                   "test_error_in_virtual_fill_is_uncorrectable")),
        Feature("TMC-9", "Correction up to E symbols, detection beyond", "§4", S,
                _t("test_rs.py", "test_up_to_e_errors_are_corrected",
                   "test_beyond_capacity_is_detected_in_the_large_majority")),
        Feature("TMC-10", "Pseudo-randomizer over the codeblock, not the ASM", "§9", S,
                _t("test_randomizer.py", "test_tm_first_octets",
                   "test_whole_period_matches_gnuradio_lfsr")
                + _t("test_chain.py", "test_tm_randomizer_covers_codeblock_not_asm")),
        Feature("TMC-11", "CADU chain end to end, corrected and rejected frames", "§4, §8, §9",
                S, _t("test_chain.py", "test_clean_round_trip_at_any_bit_offset",
                      "test_rs_chain_corrects_within_capability",
                      "test_rs_chain_rejects_beyond_capability")),
        Feature("TMC-12", "Convolutional code (inner code)", "§3", N),
        Feature("TMC-13", "Turbo codes", "§6", N),
        Feature("TMC-14", "LDPC codes", "§7", N),
    )),
    Book("CCSDS 231.0-B-3", "TC Synchronization and Channel Coding", "cltu-bch.md", (
        Feature("TCC-1", "BCH(63,56) encoding, complemented parity, filler bit", "§3", S,
                _t("test_cltu.py", "test_bch_vectors", "test_parity_matches_long_division",
                   "test_filler_bit_is_not_covered")),
        Feature("TCC-2", "Decoding with single-error correction", "§3", S,
                _t("test_cltu.py", "test_every_single_error_corrected_or_detected",
                   "test_single_bit_errors_per_codeblock_corrected")),
        Feature("TCC-3", "Decoding in error-detection mode (up to 3 bit errors)", "§3", S,
                _t("test_cltu.py", "test_every_triple_error_detected",
                   "test_every_double_error_rejected_in_both_modes")),
        Feature("TCC-4", "CLTU: start sequence, fill 0x55, tail sequence", "§4", S,
                _t("test_cltu.py", "test_cltu_round_trip", "test_spacepylibrary_cltu_body",
                   "test_tail_is_rejected_in_both_modes_even_with_one_error")),
        Feature("TCC-5", "TC pseudo-randomizer before BCH encoding", "§6", S,
                _t("test_randomizer.py", "test_tc_first_octets")
                + _t("test_chain.py", "test_tc_randomizer_before_bch_and_fill_after")),
        Feature("TCC-6", "CLTU search in a bit stream at any bit offset, inverted streams",
                "§4", S,
                _t("test_cltu.py", "test_stream_decoder_finds_cltus_at_any_bit_offset",
                   "test_stream_decoder_inverted_and_start_errors")),
        Feature("TCC-7", "A rejected codeblock ends the CLTU; only whole frames delivered",
                "§4", S,
                _t("test_cltu.py", "test_double_error_ends_the_cltu_and_keeps_the_good_prefix")
                + _t("test_chain.py", "test_tc_double_error_rejects_frame_but_not_after_its_end")),
        Feature("TCC-8", "LDPC codes for telecommand", "§3 (231.0-B-4)", N),
        Feature("TCC-10", "CLTUs carrying USLP frames (cut by the USLP Frame Length)",
                "§1 (231.0-B-4)", S,
                _t("test_cop1_frames.py", "test_uslp_frames_in_cltus_of_any_length",
                   "test_cltu_refuses_truncated_uslp_and_reports_cut_frames")),
        Feature("TCC-9", "Physical Layer Operations Procedure (acquisition, idle sequences)",
                "§5", N),
    )),
    Book("linkstack", "AI payload messages (no Blue Book)", "payload.md", (
        Feature("PAY-1", "Prompt and Result layouts, one construct declaration each",
                "messages.py", S,
                _t("test_payload_messages.py", "test_prompt_vector", "test_result_vector",
                   "test_fast_layout_agrees_with_the_declaration")),
        Feature("PAY-2", "zstd text compression, bounded inflation", "messages.py", S,
                _t("test_payload_messages.py", "test_compressed_text_layout",
                   "test_decompression_bomb_is_refused")),
        Feature("PAY-3", "Decoders raise typed errors naming field and offset", "messages.py",
                S, _t("test_payload_messages.py", "test_random_bytes_raise_only_decode_errors",
                      "test_every_truncation_is_an_error")),
        Feature("PAY-4", "Messages over Space Packets: APIDs, segmentation, losses reported",
                "transport.py", S,
                _t("test_payload_endpoint.py", "test_packets_use_configured_apids_and_types",
                   "test_long_prompt_and_long_result_cross_many_packets",
                   "test_lost_segment_gets_malformed_with_request_id")),
    )),
    Book("linkstack", "Selective-repeat ARQ (no Blue Book)", "sr.md", (
        Feature("SR-1", "Data and ack frames, one construct declaration each", "sr.py", S,
                _t("test_sr.py", "test_data_frame_vector", "test_ack_frame_vector",
                   "test_data_frame_matches_construct_declaration",
                   "test_ack_frame_matches_construct_declaration")),
        Feature("SR-2", "Selective retransmission from the SACK bitmap", "sr.py", S,
                _t("test_sr.py", "test_selective_retransmission_of_the_missing_frame_only")),
        Feature("SR-3", "RFC 6298 retransmission timer with Karn's rule", "sr.py", S,
                _t("test_sr.py", "test_rfc6298_estimator_and_karn",
                   "test_ack_delay_is_subtracted_from_the_sample")),
        Feature("SR-4", "32-bit sequence numbers with serial-number arithmetic", "sr.py", S,
                _t("test_sr.py", "test_unwrap_serial_arithmetic",
                   "test_sequence_numbers_cross_the_32_bit_wrap")),
        Feature("SR-5", "Hybrid-ARQ mode (probe, then release on the first ack)", "sr.py", S,
                _t("test_sr.py", "test_fec_mode_probes_with_the_oldest_frame")),
        Feature("SR-6", "Every SDU delivered once and in order over a lossy link", "sr.py", S,
                _t("test_arq_properties.py", "test_sr_exactly_once_in_order")),
    )),
    Book("CCSDS 355.0-B-2", "Space Data Link Security Protocol", "sdls.md", (
        Feature("SDLS-1", "Security Header: 16-bit SPI, IV, Sequence Number (ARSN) and Pad "
                "Length, every length a managed parameter of the SA, IV and ARSN sent whole "
                "or as their low-order octets", "§3.2", S,
                _t("test_sdls_vectors.py", "test_security_header_matches_construct",
                   "test_cryptolib_exercise_iv_apply_is_bit_exact",
                   "test_cryptolib_exercise_arsn_apply_is_bit_exact")
                + _t("test_sdls_engine.py", "test_partially_transmitted_iv_and_arsn_carry"),
                note="CryptoLib reads an 8-bit SPI on TM and AOS: interoperable below 256"),
        Feature("SDLS-2", "Security Trailer: the MAC, before the OCF and the FECF; FECF "
                "recomputed over the secured frame", "§3.3", S,
                _t("test_sdls_vectors.py", "test_cryptolib_tm_apply_and_process",
                   "test_cryptolib_gcm_iv_and_arsn_apply_is_bit_exact")
                + _t("test_sdls_engine.py", "test_round_trip")),
        Feature("SDLS-3", "TC frames: Security Header after the primary header and the Segment "
                "Header, Frame Length updated", "§3.1, §4", S,
                _t("test_sdls_engine.py",
                   "test_tc_gcm_aad_is_header_with_new_length_segment_header_spi_iv")
                + _t("test_sdls_vectors.py", "test_cryptolib_exercise_iv_process")),
        Feature("SDLS-4", "TM frames: after the primary and secondary headers, fixed length "
                "kept", "§3.1, §4", S,
                _t("test_sdls_vectors.py", "test_cryptolib_tm_secondary_header_mac")
                + _t("test_sdls_engine.py", "test_tm_and_aos_reject_wrong_length")),
        Feature("SDLS-5", "AOS frames: after the primary header, FHEC and Insert Zone", "§3.1, §4",
                S, _t("test_sdls_vectors.py", "test_cryptolib_aos_cmac_apply_and_process")
                + _t("test_sdls_cli.py", "test_aos_with_insert_zone_fhec_and_ocf")),
        Feature("SDLS-6", "USLP frames: after the primary header and Insert Zone, fixed and "
                "variable length", "§3.1, §4", P,
                _t("test_sdls_engine.py", "test_round_trip")
                + _t("test_sdls_hops.py", "test_isl_round_trip_with_sdls_delivers_every_"
                     "packet_in_order"),
                note="truncated frames carry no Security Header and are refused"),
        Feature("SDLS-7", "Authenticated encryption: AES-GCM (128/256-bit keys), the AAD the "
                "masked headers and Security Header", "§2.3.3, §3.4", S,
                _t("test_sdls_vectors.py", "test_gcm_spec_test_case_16",
                   "test_cryptolib_gcm_iv_and_arsn_process")
                + _t("test_sdls_engine.py", "test_data_field_is_encrypted")),
        Feature("SDLS-8", "Authentication only: GMAC, AES-CMAC, HMAC-SHA-256, MAC truncated to "
                "the SA's length", "§2.3.2, §3.4", S,
                _t("test_sdls_vectors.py", "test_gmac_is_gcm_with_empty_plaintext",
                   "test_rfc4493_cmac", "test_rfc4231_hmac_sha256",
                   "test_tm_all_ones_mask_macs_match_the_algorithms")),
        Feature("SDLS-9", "Encryption only", "§2.3.1", P,
                _t("test_sdls_engine.py", "test_round_trip"),
                note="AES-GCM keystream without the tag, as CryptoLib; no integrity"),
        Feature("SDLS-10", "Authentication bit mask over the frame headers", "§3.4, §5", S,
                _t("test_sdls_engine.py",
                   "test_masked_out_header_bits_are_not_authenticated")),
        Feature("SDLS-11", "ProcessSecurity: FECF, headers, SPI, channel, SA state, key, "
                "lengths, MAC, anti-replay; a rejected frame goes no further, counted by "
                "reason", "§3.5", S,
                _t("test_sdls_engine.py", "test_rejection_reasons_and_counters",
                   "test_fuzz_receive_path_returns_typed_rejection")
                + _t("test_sdls_properties.py",
                     "test_any_flipped_bit_in_the_authenticated_part_is_rejected",
                     "test_a_random_mac_is_rejected")
                + _t("test_sdls_hops.py", "test_status_counts_rejections_by_reason")),
        Feature("SDLS-12", "Anti-replay: sequence number window; replays and frames older "
                "than the window rejected, reordered frames inside it accepted once", "§3.5.2",
                S, _t("test_sdls_engine.py", "test_window_edges",
                      "test_gcm_iv_is_the_counter_without_arsn")
                + _t("test_sdls_properties.py",
                     "test_replayed_and_too_old_frames_are_rejected",
                     "test_reordered_frames_inside_the_window_are_accepted_exactly_once"),
                note="a bitmap of the values behind the highest (RFC 6479 style, at most "
                     "65536); CryptoLib accepts only values ahead"),
        Feature("SDLS-13", "Pad Length and fill for block-cipher modes", "§3.2.5", P,
                _t("test_sdls_engine.py", "test_round_trip"),
                note="the field is sent (0) and checked; no algorithm here needs fill"),
        Feature("SDLS-14", "IV and ARSN never reused by the sender, across restarts too",
                "§3.4", S, _t("test_sdls_config.py", "test_iv_counter_survives_restart",
                              "test_reservation_happens_before_use")),
        Feature("SDLS-15", "SDLS on every hop of a scenario (COP-1, SR, CLCW, idle frames)",
                "—", S, _t("test_sdls_hops.py",
                           "test_default_scenario_with_sdls_runs_end_to_end",
                           "test_cop1_retransmission_gets_a_fresh_iv_and_passes_after_farm1_"
                           "refused_the_first_copy")
                + _t("test_sdls_cli.py", "test_run_secure_answers_like_default_with_the_sdls_"
                     "overhead_in_the_breakdown"),
                note="not over `linkstack serve` (UDP), which refuses a scenario with SDLS"),
        Feature("SDLS-16", "SAs on MAP channels (GMAP ID) of TC and USLP", "§2.4", N),
    )),
    Book("CCSDS 355.1-B-1", "Space Data Link Security Protocol — Extended Procedures",
         "sdls.md", (
        Feature("SDLSEP-1", "Key states (pre-active, active, deactivated), Key Activation and "
                "Key Deactivation; a key file private to its owner", "§3.2", S,
                _t("test_sdls_sa.py", "test_key_procedures")
                + _t("test_sdls_config.py", "test_key_file_must_be_private",
                     "test_keys_never_printed")),
        Feature("SDLSEP-2", "SA states and procedures: Rekey, Start, Stop, Expire, Delete, "
                "Set ARSN, Set ARSN Window, Read ARSN, SA Status", "§3.3", S,
                _t("test_sdls_sa.py", "test_every_transition", "test_transition_table_is_355_1",
                   "test_full_life_cycle", "test_start_checks", "test_rekey_checks")),
        Feature("SDLSEP-3", "Extended Procedures PDUs (tag, length, value) of the procedures "
                "above, executed from authenticated frames", "§5", P,
                _t("test_sdls_sa.py", "test_pdu_round_trip", "test_execute_replies_and_refusals",
                   "test_sa_management_as_authenticated_ground_commands")
                + _t("test_sdls_vectors.py", "test_cryptolib_ep_pdus"),
                note="no hop routes PDUs to an SA database yet"),
        Feature("SDLSEP-4", "Create SA", "§3.3", N, note="SAs come from the SA file"),
        Feature("SDLSEP-5", "Over-the-air rekeying (OTAR), key verification, destruction and "
                "inventory", "§3.2", N),
        Feature("SDLSEP-6", "Security monitoring and control (alarm flags, log, self-test, "
                "Frame Security Report)", "§3.4", N,
                note="rejections are counted by reason in the endpoints' status instead"),
    )),
    Book("—", "Other CCSDS Blue Books near the stack", "", (
        Feature("OTHER-2", "CCSDS File Delivery Protocol (CCSDS 727.0-B)", "—", N),
        Feature("OTHER-3", "Encapsulation Packet Protocol (CCSDS 133.1-B)", "—", N),
        Feature("OTHER-4", "Proximity-1 Space Link Protocol (CCSDS 211.x-B)", "—", N),
        Feature("OTHER-5", "Optical communications physical layer (CCSDS 141.0-B)", "—", N,
                note="the laser ISL is simulated at bit level only"),
    )),
)


# ---------------------------------------------------------------------------------------------
# Verification
# ---------------------------------------------------------------------------------------------


def _test_names(path: Path) -> set[str]:
    """Test functions of one file: ``name`` and ``Class::name``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            for sub in node.body:
                if isinstance(sub, ast.FunctionDef | ast.AsyncFunctionDef):
                    names.add(f"{node.name}::{sub.name}")
    return {n for n in names if n.split("::")[-1].startswith("test")}


def missing_tests(node_ids: Iterable[str], root: Path) -> list[str]:
    """The node ids (``tests/test_x.py::test_y``, relative to ``root``) that do not exist.

    A test exists when its file parses and defines the function (or class method) at top
    level; parametrized ids (``name[...]``) are checked by their function name.
    """
    cache: dict[str, set[str] | None] = {}
    missing = []
    for node_id in node_ids:
        file, _, name = node_id.partition("::")
        name = name.split("[", 1)[0]
        if file not in cache:
            path = root / file
            cache[file] = _test_names(path) if path.is_file() else None
        names = cache[file]
        if names is None or name not in names:
            missing.append(node_id)
    return missing


def check_books(books: Sequence[Book], root: Path) -> None:
    """Raise :class:`SpecBuildError` for a missing test or an inconsistent status."""
    problems = []
    for book in books:
        for f in book.features:
            if f.status is N and f.tests:
                problems.append(f"{f.item}: not supported but names tests")
            if f.status is not N and not f.tests:
                problems.append(f"{f.item}: {f.status.value} but names no test")
    ids = [t for book in books for f in book.features for t in f.tests]
    gone = missing_tests(ids, root)
    if gone:
        problems.append("tests that do not exist: " + ", ".join(gone))
    if problems:
        raise SpecBuildError("compliance table: " + "; ".join(problems))


# ---------------------------------------------------------------------------------------------
# The page
# ---------------------------------------------------------------------------------------------


def _counts(book: Book) -> tuple[int, int, int]:
    return (sum(f.status is S for f in book.features), sum(f.status is P for f in book.features),
            sum(f.status is N for f in book.features))


def compliance_page(root: Path, books: Sequence[Book] = BOOKS) -> str:
    """Markdown of ``specs/compliance.md`` (after :func:`check_books`)."""
    check_books(books, root)
    summary = []
    for book in books:
        s, p, n = _counts(book)
        where = f"[{book.page}]({book.page})" if book.page else "—"
        summary.append((book.code, book.title, where, str(s), str(p), str(n)))
    out = [
        "## How to read this table",
        "",
        "In the style of a PICS (Protocol Implementation Conformance Statement): one line per "
        "feature of each Blue Book that the stack covers, with its section, its status in "
        "linkstack and the tests that show it. *Supported*: implemented as the Blue Book says, "
        "with tests; *partial*: part of it is there (the note says what is missing); *not "
        "supported*: absent. Every test is named by its pytest node id, e.g. run one with "
        "`python -m pytest -q 'tests/test_frames_tc.py::test_round_trip'`. When this page is "
        "built, every named test is checked to exist in the test files; a renamed or removed "
        "test stops the build.",
        "",
        "## Summary",
        "",
        md_table(("Book", "Title", "Spec page", "supported", "partial", "not supported"),
                 summary),
        "",
    ]
    for book in books:
        out += [f"## {book.code}: {book.title}", ""]
        rows = []
        for f in book.features:
            status = f.status.value + (f" ({f.note})" if f.note else "")
            tests = "<br>".join(f"`{t}`" for t in f.tests) or "—"
            rows.append((f.item, f.feature, f.section, status, tests))
        out += [md_table(("Item", "Feature", "Section", "Status", "Tests"), rows), ""]
    return "\n".join(out)
