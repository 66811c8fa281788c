-- The cost of the message being typed, on the selected model, shown on the chat's prompt heading
-- (switchboard/estimate). Only while the server runs: typing never starts one.
local server = require('switchboard.server')
local status = require('switchboard.status')
local transcript = require('switchboard.transcript')

local M = {}

local ESTIMATE_DELAY_MS = 300

-- Debounced: the estimate runs once typing pauses.
function M.schedule(chat)
  chat.estimate_timer = chat.estimate_timer or vim.uv.new_timer()
  chat.estimate_timer:stop()
  chat.estimate_timer:start(ESTIMATE_DELAY_MS, 0, vim.schedule_wrap(function()
    M.run(chat)
  end))
end

function M.run(chat)
  if chat.busy or not vim.api.nvim_buf_is_valid(chat.buf) or not server.client(chat.root) then
    return
  end
  local prompt = transcript.input(chat.buf)
  if prompt == '' and #chat.pending_context == 0 then
    transcript.set_prompt_hint(chat.buf, nil)
    return
  end
  local params = {
    workspaceUri = server.workspace_uri(chat.root),
    prompt = prompt,
    conversationId = chat.conversation_id,
  }
  if #chat.pending_context > 0 then
    params.context = chat.pending_context
  end
  server.request(chat.root, 'switchboard/estimate', params, function(err, result)
    if err or not vim.api.nvim_buf_is_valid(chat.buf) or transcript.input(chat.buf) ~= prompt then
      return
    end
    local selected = status.selected(chat.root) or 'auto'
    for _, e in ipairs(result.estimates) do
      if e.modelId == selected then
        local credits = status.format_credits(e.estimatedCredits)
        local hint = ('≈ %s cr on %s'):format(credits, status.short_name(selected))
        if not e.fitsContext then
          hint = hint .. ' (too large for its context window)'
        end
        chat.last_estimate = e
        transcript.set_prompt_hint(chat.buf, hint)
      end
    end
  end)
end

return M
