-- The chat: one buffer per project root, its window, its keys, and the turns it sends.
local config = require('switchboard.config')
local errors = require('switchboard.errors')
local estimate = require('switchboard.estimate')
local server = require('switchboard.server')
local status = require('switchboard.status')
local transcript = require('switchboard.transcript')
local window = require('switchboard.window')

local M = {}

---@class switchboard.Chat
---@field root string
---@field buf integer
---@field conversation_id string|nil
---@field last_answer_id string|nil  the latest answer's turn id, what `gr` retries
---@field pending_context table[]  ContextItems attached to the next message
---@field busy table|nil  the streaming turn
local Chat = {}
Chat.__index = Chat

local chats = {} ---@type table<string, switchboard.Chat>

local function workspace(self)
  return server.workspace_uri(self.root)
end

local function map_keys(chat)
  local keys = config.options.keys
  local buf = chat.buf
  local function map(modes, lhs, fn, desc)
    if lhs then
      vim.keymap.set(modes, lhs, fn, { buffer = buf, desc = 'Switchboard: ' .. desc, nowait = true })
    end
  end
  local send = keys.send or {}
  map('n', send.n, function() chat:send() end, 'send the prompt')
  map('i', send.i, function() chat:send() end, 'send the prompt')
  if send.ns and send.ns ~= send.n then
    map('n', send.ns, function() chat:send() end, 'send the prompt')
  end
  map({ 'n', 'i' }, keys.stop, function() chat:stop() end, 'stop the answer')
  map('n', keys.model, function() require('switchboard.models').pick(chat.root) end, 'pick the model')
  map('n', keys.retry, function() chat:retry() end, 'retry with a stronger model')
  map('n', keys.yank_code, function() chat:yank_code() end, 'yank the nearest code block')
  map('n', keys.new, function() chat:new() end, 'new conversation')
  map('n', keys.history, function() require('switchboard.history').pick(chat.root) end, 'history')
  map('n', keys.usage, function() require('switchboard.usage').show(chat.root) end, 'usage')
  map('n', keys.action, function() errors.run_action() end, "the last error's action")
  map('n', keys.close, function() chat:hide() end, 'close the chat window')
end

local function create(root)
  local buf = vim.api.nvim_create_buf(false, true)
  vim.bo[buf].buftype = 'nofile'
  vim.bo[buf].bufhidden = 'hide'
  vim.bo[buf].swapfile = false
  local name = 'switchboard://chat/' .. vim.fs.basename(root)
  if vim.fn.bufexists(name) == 1 then
    name = name .. '-' .. buf
  end
  vim.api.nvim_buf_set_name(buf, name)
  vim.b[buf].switchboard_root = root
  -- Tree-sitter users get Markdown highlighting (code blocks included) in the chat.
  pcall(vim.treesitter.language.register, 'markdown', 'switchboard')
  vim.bo[buf].filetype = 'switchboard'
  transcript.reset(buf)
  local chat = setmetatable({ root = root, buf = buf, pending_context = {} }, Chat)
  map_keys(chat)
  vim.api.nvim_create_autocmd({ 'TextChanged', 'TextChangedI' }, {
    buffer = buf,
    callback = function()
      chat:schedule_estimate()
    end,
  })
  vim.api.nvim_create_autocmd('BufWipeout', {
    buffer = buf,
    once = true,
    callback = function()
      chats[root] = nil
    end,
  })
  return chat
end

server.on_exit(function(root)
  local chat = chats[root]
  if chat and chat.busy then
    local message = 'The Switchboard server stopped before the answer finished.'
    chat:_failed(chat.busy, { code = -32603, message = message })
  end
end)

function M.get(root, create_it)
  local chat = chats[root]
  if not chat and create_it ~= false then
    chat = create(root)
    chats[root] = chat
  end
  return chat
end

function Chat:window()
  return window.find(self.buf)
end

function Chat:show()
  return window.show(self.buf, config.options.chat)
end

function Chat:hide()
  window.hide(self.buf)
end

function Chat:focus_prompt(insert)
  local win = self:window()
  if not win then
    return
  end
  local count = vim.api.nvim_buf_line_count(self.buf)
  local last = vim.api.nvim_buf_get_lines(self.buf, count - 1, count, false)[1] or ''
  vim.api.nvim_win_set_cursor(win, { count, #last })
  if insert then
    vim.cmd('startinsert!')
  end
end

function Chat:add_context(item)
  table.insert(self.pending_context, item)
  self:show_pending_context()
end

function Chat:show_pending_context()
  local row = transcript.prompt_row(self.buf)
  vim.api.nvim_buf_clear_namespace(self.buf, transcript.context_ns, 0, -1)
  if #self.pending_context == 0 then
    return
  end
  local virt = {}
  for _, item in ipairs(self.pending_context) do
    table.insert(virt, { { transcript.context_label(item), 'Comment' } })
  end
  vim.api.nvim_buf_set_extmark(self.buf, transcript.context_ns, row, 0, { virt_lines = virt })
end

function Chat:schedule_estimate()
  if config.options.chat.estimate then
    estimate.schedule(self)
  end
end

-- `:Switchboard think [budget|off]`: extended thinking for the next messages.
function Chat:set_thinking(budget)
  self.thinking_budget = budget
  if budget then
    vim.notify(('Switchboard: thinking on, %d tokens, for the next messages.'):format(budget))
  else
    vim.notify('Switchboard: thinking off.')
  end
end

-- Sends the prompt area's text as the next message of this conversation.
function Chat:send()
  if self.busy then
    vim.notify('Switchboard: an answer is still streaming; <C-c> stops it.', vim.log.levels.WARN)
    return
  end
  local prompt = transcript.input(self.buf)
  if prompt == '' then
    vim.notify('Switchboard: type your message under the last "## You", then send it.', vim.log.levels.WARN)
    return
  end
  local context = self.pending_context
  self.pending_context = {}
  self:show_pending_context()
  transcript.set_input(self.buf, '')
  transcript.add_user_turn(self.buf, prompt, context)
  local params = { workspaceUri = workspace(self), prompt = prompt, conversationId = self.conversation_id }
  if #context > 0 then
    params.context = context
  end
  if self.thinking_budget then
    params.thinking = { budgetTokens = self.thinking_budget }
  end
  transcript.set_prompt_hint(self.buf, nil)
  local heading = status.model_name(status.selected(self.root) or 'auto')
  self:_stream('switchboard/chat', params, heading, { prompt = prompt, context = context })
end

-- `gr`: answers the last prompt again, with `model_id` or the next stronger model.
function Chat:retry(model_id)
  if self.busy then
    vim.notify('Switchboard: an answer is still streaming; <C-c> stops it.', vim.log.levels.WARN)
    return
  end
  if not (self.conversation_id and self.last_answer_id) then
    vim.notify('Switchboard: nothing to retry yet; send a message first.', vim.log.levels.WARN)
    return
  end
  local params = {
    workspaceUri = workspace(self),
    conversationId = self.conversation_id,
    turnId = self.last_answer_id,
    modelId = model_id,
  }
  local heading = model_id and status.model_name(model_id) or 'a stronger model'
  self:_stream('switchboard/retry', params, 'Retry · ' .. heading, { retry = true })
end

function Chat:_stream(method, params, heading, origin)
  local token = server.new_token()
  params.workDoneToken = token
  self.sent = (self.sent or 0) + 1
  local busy = {
    token = token,
    origin = origin,
    answer = transcript.begin_answer(self.buf, heading),
    retry = origin.retry,
    used_before = status.usage and status.usage.usedCredits,
  }
  self.busy = busy
  server.listen(token, function(value)
    self:_progress(busy, value)
  end)
  local started = server.request(self.root, method, params, function(err, result)
    self:_response(busy, err, result)
  end, function(client, request_id)
    busy.client, busy.request_id = client, request_id
    if busy.stop_requested then
      server.cancel(client, request_id)
    end
  end)
  if not started then
    self:_failed(busy, { code = -32603, message = 'The Switchboard server could not start.' })
  end
end

local function answer_heading(busy, route)
  local name = status.model_name(route.routedModel)
  return busy.retry and ('Retry · ' .. name) or name
end

function Chat:_progress(busy, value)
  if busy.done then
    return
  end
  if value.kind == 'report' and value.type == 'route' then
    busy.route = value
    self.conversation_id = value.conversationId
    self.last_answer_id = value.turnId
    transcript.set_heading(busy.answer, answer_heading(busy, value))
  elseif value.kind == 'report' and value.type == 'text' then
    transcript.append(busy.answer, value.text)
  elseif value.kind == 'report' and value.type == 'thinking' then
    busy.thinking = (busy.thinking or '') .. value.text
  elseif value.kind == 'end' and value.message == 'Cancelled' then
    -- Neovim drops the response of a cancelled request: the turn ends here.
    self:_cancelled(busy)
  end
end

function Chat:_response(busy, err, result)
  if busy.done then
    return
  end
  if err and err.code == errors.codes.CANCELLED then
    self:_cancelled(busy)
  elseif err then
    self:_failed(busy, err)
  else
    self:_complete(busy, result)
  end
end

local function footer(parts)
  return '*' .. table.concat(parts, ' · ') .. '*'
end

local function credits_text(value)
  return status.format_credits(value) .. ' credits'
end

-- Own key, not signed in: the answer's cost at list price ("$0.0031" below a cent).
local function cost_text(value)
  if type(value) ~= 'number' then
    return nil
  end
  if value > 0 and value < 0.01 then
    local decimals = 1 - math.floor(math.log(value, 10)) -- two significant digits
    return '$' .. (string.format('%.' .. decimals .. 'f', value):gsub('0+$', ''))
  end
  return string.format('$%.2f', value)
end

function Chat:_done(busy)
  busy.done = true
  server.unlisten(busy.token)
  if self.busy == busy then
    self.busy = nil
  end
  vim.cmd('redrawstatus!')
end

function Chat:_complete(busy, result)
  self:_done(busy)
  self.conversation_id = result.conversationId
  self.last_answer_id = result.turnId
  self.last_result = result
  transcript.set_heading(busy.answer, answer_heading(busy, result))
  local model = status.model_name(result.routedModel)
  local parts = { model, result.routeReason, credits_text(result.credits) }
  table.insert(parts, cost_text(result.costUsd))
  local notes = { footer(parts) }
  if result.droppedTurns and result.droppedTurns > 0 then
    local dropped = '> %d earlier turns were left out to fit the context window.'
    table.insert(notes, dropped:format(result.droppedTurns))
  end
  transcript.render(busy.answer, M.with_thinking(result.thinking, result.text), notes)
end

-- The thinking, when there is some, as a quote above the answer.
function M.with_thinking(thinking, text)
  if type(thinking) ~= 'string' or thinking == '' then
    return text
  end
  local quoted = { '> **Thinking**', '>' }
  for _, line in ipairs(vim.split(thinking, '\n', { plain = true })) do
    table.insert(quoted, line == '' and '>' or ('> ' .. line))
  end
  return table.concat(quoted, '\n') .. '\n\n' .. text
end

function Chat:_cancelled(busy)
  self:_done(busy)
  local parts = { 'Stopped' }
  if busy.route then
    table.insert(parts, status.model_name(busy.route.routedModel))
    table.insert(parts, busy.route.routeReason)
  end
  local used_after = status.usage and status.usage.usedCredits
  if busy.used_before and used_after then
    table.insert(parts, credits_text(math.max(0, used_after - busy.used_before)))
  end
  transcript.render(busy.answer, busy.answer.text, { footer(parts) })
end

function Chat:_failed(busy, err)
  self:_done(busy)
  local hint = errors.show(err, self:_error_handlers(busy))
  local notes = { ('> **Error %s**: %s%s'):format(tostring(err.code), err.message or '', hint) }
  transcript.render(busy.answer, busy.answer.text, notes)
  -- Nothing was stored for an error before the call: give the prompt and its context back.
  local origin = busy.origin
  if not busy.route and origin.prompt and transcript.input(self.buf) == '' then
    transcript.set_input(self.buf, origin.prompt)
    vim.list_extend(self.pending_context, origin.context or {})
    self:show_pending_context()
  end
end

-- Sends again what failed: the prompt given back to the input, or the stored turn through retry.
function Chat:_resend(busy)
  if busy.route then
    self:retry(busy.route.routedModel)
    return
  end
  local origin = busy.origin
  if transcript.input(self.buf) == '' and origin.prompt then
    transcript.set_input(self.buf, origin.prompt)
    if #self.pending_context == 0 then
      vim.list_extend(self.pending_context, origin.context or {})
    end
  end
  self:send()
end

function Chat:_error_handlers(busy)
  local root = self.root
  return {
    use_model = function(id)
      require('switchboard.models').select(root, id, function()
        self:_resend(busy)
      end)
    end,
    enable_overage = function()
      server.request(root, 'switchboard/setOverage', { enabled = true }, function(err, report)
        if err then
          errors.show(err)
          return
        end
        status.set_usage(report)
        self:_resend(busy)
      end)
    end,
    retry = function()
      self:_resend(busy)
    end,
    try_model = function(id)
      self:retry(id)
    end,
    new_conversation = function()
      self:new()
      self:_resend(busy)
    end,
    show_usage = function()
      require('switchboard.usage').show(root)
    end,
    check_health = function()
      vim.cmd('checkhealth switchboard')
    end,
  }
end

-- `<C-c>`: stops the streaming answer; what arrived stays. Idle, it does nothing.
function Chat:stop()
  local busy = self.busy
  if not busy then
    return
  end
  busy.stop_requested = true
  if busy.client and busy.request_id then
    server.cancel(busy.client, busy.request_id)
  end
end

function Chat:yank_code()
  local win = self:window()
  local row = win and vim.api.nvim_win_get_cursor(win)[1] or vim.api.nvim_buf_line_count(self.buf)
  local code = transcript.code_block_at(self.buf, row)
  if not code then
    vim.notify('Switchboard: no code block in this chat yet.', vim.log.levels.WARN)
    return
  end
  local register = vim.v.register ~= '' and vim.v.register or '"'
  vim.fn.setreg(register, code, 'l')
  vim.notify(('Switchboard: yanked %d lines of code.'):format(#vim.split(code, '\n')), vim.log.levels.INFO)
end

-- `gn`: a new conversation; the next message starts it.
-- Stops the streaming answer and forgets it: the buffer is about to show something else.
function Chat:abandon()
  local busy = self.busy
  if busy then
    self:stop()
    self:_done(busy)
  end
end

function Chat:new()
  self:abandon()
  self.conversation_id, self.last_answer_id, self.last_result = nil, nil, nil
  self.pending_context = {}
  vim.api.nvim_buf_clear_namespace(self.buf, transcript.context_ns, 0, -1)
  transcript.reset(self.buf)
  self:focus_prompt(false)
end

-- Shows a stored conversation (switchboard/conversation's result) and continues it.
function Chat:load(conversation)
  self:abandon()
  transcript.reset(self.buf, conversation.title)
  for _, turn in ipairs(conversation.turns) do
    if turn.role == 'user' then
      transcript.add_user_turn(self.buf, turn.text, turn.context)
    else
      local prefix = turn.retryOf ~= vim.NIL and turn.retryOf and 'Retry · ' or ''
      local answer = transcript.begin_answer(self.buf, prefix .. status.model_name(turn.routedModel))
      local parts = { status.model_name(turn.routedModel), turn.routeReason, credits_text(turn.credits) }
      if turn.status ~= 'complete' then
        table.insert(parts, 1, turn.status == 'cancelled' and 'Stopped' or 'Failed')
      end
      local notes = { footer(vim.tbl_filter(function(p) return type(p) == 'string' end, parts)) }
      if turn.status == 'failed' and type(turn.error) == 'string' then
        table.insert(notes, '> **Error**: ' .. turn.error)
      end
      transcript.render(answer, M.with_thinking(turn.thinking, turn.text), notes)
      self.last_answer_id = turn.id
    end
  end
  self.conversation_id = conversation.id
  self:focus_prompt(false)
end

-- `:Switchboard chat`, with a range: attach those lines of the current buffer.
function M.open(opts)
  opts = opts or {}
  local source = vim.api.nvim_get_current_buf()
  local root = server.root(source)
  local chat = M.get(root)
  if opts.range and source ~= chat.buf then
    chat:add_context(M.context_item(source, opts.line1, opts.line2))
  end
  chat:show()
  chat:focus_prompt(config.options.chat.start_insert)
  server.with_client(root, function() end)
  return chat
end

function M.context_item(buf, line1, line2)
  local lines = vim.api.nvim_buf_get_lines(buf, line1 - 1, line2, false)
  local item = {
    uri = vim.uri_from_bufnr(buf),
    text = table.concat(lines, '\n'),
    range = {
      start = { line = line1 - 1, character = 0 },
      ['end'] = { line = line2 - 1, character = #(lines[#lines] or '') },
    },
  }
  if vim.bo[buf].filetype ~= '' then
    item.languageId = vim.bo[buf].filetype
  end
  return item
end

function M.current(root)
  return M.get(root or server.root(0), false)
end

return M
