-- Catalog reads and the seed's upserts.

-- name: load_providers
SELECT name, display_name, wire_format, base_url, chat_completions_path, api_key_env, stack,
       serving_region, fast_tier, active
  FROM providers
 ORDER BY name;

-- name: provider_names
SELECT name FROM providers ORDER BY name;

-- name: load_models
SELECT slug, model_family, provider, provider_model_name,
       input_usd_per_mtok::float8 AS input_usd_per_mtok,
       output_usd_per_mtok::float8 AS output_usd_per_mtok,
       cached_input_usd_per_mtok::float8 AS cached_input_usd_per_mtok,
       cache_write_usd_per_mtok::float8 AS cache_write_usd_per_mtok,
       context_window, max_output_tokens, supports_streaming, supports_tools, supports_vision,
       aa_index::float8 AS aa_index, p50_ttft_ms, output_tokens_per_s::float8 AS output_tokens_per_s,
       fast_aa_index::float8 AS fast_aa_index, fast_p50_ttft_ms,
       fast_output_tokens_per_s::float8 AS fast_output_tokens_per_s, fast_reasoning_effort, reasoning_efforts,
       active, deactivation_reason
  FROM models
 ORDER BY slug;

-- name: upsert_provider
-- Facts are refreshed on every seed; `active` is left as the system last decided it.
INSERT INTO providers (name, display_name, wire_format, base_url, chat_completions_path, api_key_env,
                       stack, fast_tier, serving_region)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (name) DO UPDATE
   SET display_name = EXCLUDED.display_name, wire_format = EXCLUDED.wire_format,
       base_url = EXCLUDED.base_url, chat_completions_path = EXCLUDED.chat_completions_path,
       api_key_env = EXCLUDED.api_key_env, stack = EXCLUDED.stack, fast_tier = EXCLUDED.fast_tier,
       serving_region = EXCLUDED.serving_region, updated_at = now()
 WHERE (providers.display_name, providers.wire_format, providers.base_url, providers.chat_completions_path,
        providers.api_key_env, providers.stack, providers.fast_tier, providers.serving_region)
       IS DISTINCT FROM
       (EXCLUDED.display_name, EXCLUDED.wire_format, EXCLUDED.base_url, EXCLUDED.chat_completions_path,
        EXCLUDED.api_key_env, EXCLUDED.stack, EXCLUDED.fast_tier, EXCLUDED.serving_region);

-- name: upsert_model
-- New rows start active unless the catalog marks them retired; existing rows keep their state.
INSERT INTO models (slug, model_family, provider, provider_model_name, input_usd_per_mtok,
                    output_usd_per_mtok, context_window, max_output_tokens, supports_streaming,
                    supports_tools, supports_vision, aa_index, p50_ttft_ms, output_tokens_per_s,
                    catalog_status, active, deactivation_reason, fast_aa_index, fast_p50_ttft_ms,
                    fast_output_tokens_per_s, fast_reasoning_effort, reasoning_efforts,
                    cached_input_usd_per_mtok, cache_write_usd_per_mtok)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22,
        $23, $24)
ON CONFLICT (slug) DO UPDATE
   SET model_family = EXCLUDED.model_family, provider = EXCLUDED.provider,
       provider_model_name = EXCLUDED.provider_model_name,
       input_usd_per_mtok = EXCLUDED.input_usd_per_mtok, output_usd_per_mtok = EXCLUDED.output_usd_per_mtok,
       context_window = EXCLUDED.context_window, max_output_tokens = EXCLUDED.max_output_tokens,
       supports_streaming = EXCLUDED.supports_streaming, supports_tools = EXCLUDED.supports_tools,
       supports_vision = EXCLUDED.supports_vision, aa_index = EXCLUDED.aa_index,
       p50_ttft_ms = EXCLUDED.p50_ttft_ms, output_tokens_per_s = EXCLUDED.output_tokens_per_s,
       catalog_status = EXCLUDED.catalog_status, fast_aa_index = EXCLUDED.fast_aa_index,
       fast_p50_ttft_ms = EXCLUDED.fast_p50_ttft_ms, fast_output_tokens_per_s = EXCLUDED.fast_output_tokens_per_s,
       fast_reasoning_effort = EXCLUDED.fast_reasoning_effort, reasoning_efforts = EXCLUDED.reasoning_efforts,
       cached_input_usd_per_mtok = EXCLUDED.cached_input_usd_per_mtok,
       cache_write_usd_per_mtok = EXCLUDED.cache_write_usd_per_mtok,
       updated_at = now()
 WHERE (models.model_family, models.provider, models.provider_model_name, models.input_usd_per_mtok,
        models.output_usd_per_mtok, models.context_window, models.max_output_tokens,
        models.supports_streaming, models.supports_tools, models.supports_vision, models.aa_index,
        models.p50_ttft_ms, models.output_tokens_per_s, models.catalog_status, models.fast_aa_index,
        models.fast_p50_ttft_ms, models.fast_output_tokens_per_s, models.fast_reasoning_effort,
        models.reasoning_efforts, models.cached_input_usd_per_mtok, models.cache_write_usd_per_mtok)
       IS DISTINCT FROM
       (EXCLUDED.model_family, EXCLUDED.provider, EXCLUDED.provider_model_name, EXCLUDED.input_usd_per_mtok,
        EXCLUDED.output_usd_per_mtok, EXCLUDED.context_window, EXCLUDED.max_output_tokens,
        EXCLUDED.supports_streaming, EXCLUDED.supports_tools, EXCLUDED.supports_vision, EXCLUDED.aa_index,
        EXCLUDED.p50_ttft_ms, EXCLUDED.output_tokens_per_s, EXCLUDED.catalog_status, EXCLUDED.fast_aa_index,
        EXCLUDED.fast_p50_ttft_ms, EXCLUDED.fast_output_tokens_per_s, EXCLUDED.fast_reasoning_effort,
        EXCLUDED.reasoning_efforts, EXCLUDED.cached_input_usd_per_mtok, EXCLUDED.cache_write_usd_per_mtok);

-- name: set_model_active
UPDATE models SET active = $2, deactivation_reason = $3, updated_at = now() WHERE slug = $1;
