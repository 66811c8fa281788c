-- Server errors, shown with the server's own message through vim.notify, and the action each one
-- offers (Use Auto, Enable overage, Retry, Try <model>, …), one `ga` or `:Switchboard action` away.
local status = require('switchboard.status')

local M = {}

M.codes = {
  INVALID_PARAMS = -32602,
  CANCELLED = -32800,
  PLAN_FORBIDS_MODEL = 1001,
  CREDITS_EXHAUSTED = 1002,
  UPSTREAM_FAILED = 1003,
  NO_API_KEY = 1004,
  CONVERSATION_NOT_FOUND = 1005,
  PROMPT_TOO_LARGE = 1006,
}

M.last = nil ---@type {message: string, actions: {label: string, run: function}[]}|nil

local function data_of(err)
  local data = err.data
  if type(data) ~= 'table' then
    return {}
  end
  return data
end

-- The actions an error offers. `handlers` holds what the caller can do: use_model(id), enable_overage(),
-- retry(), try_model(id), new_conversation(), show_usage(), check_health().
function M.actions(err, handlers)
  local code, data = err.code, data_of(err)
  local actions = {}
  local function add(label, fn, ...)
    if fn then
      local args = { ... }
      table.insert(actions, { label = label, run = function() fn((table.unpack or unpack)(args)) end })
    end
  end
  if code == M.codes.PLAN_FORBIDS_MODEL and data.modelId then
    add('Use Auto', handlers.use_model, 'auto')
  elseif code == M.codes.INVALID_PARAMS and data.modelId and data.modelId ~= vim.NIL then
    add('Use Auto', handlers.use_model, 'auto')
  elseif code == M.codes.CREDITS_EXHAUSTED then
    if data.overageAvailable then
      add('Enable overage', handlers.enable_overage)
    end
    add('Show usage', handlers.show_usage)
  elseif code == M.codes.UPSTREAM_FAILED then
    if data.retryable then
      add('Retry', handlers.retry)
    end
    if type(data.suggestedModel) == 'string' then
      add('Try ' .. status.model_name(data.suggestedModel), handlers.try_model, data.suggestedModel)
    end
  elseif code == M.codes.NO_API_KEY then
    add('Check health', handlers.check_health)
  elseif code == M.codes.CONVERSATION_NOT_FOUND then
    add('New conversation', handlers.new_conversation)
  end
  return actions
end

local function hint(actions)
  if #actions == 0 then
    return ''
  end
  local labels = vim.tbl_map(function(a)
    return a.label
  end, actions)
  return ' [ga or :Switchboard action: ' .. table.concat(labels, ' · ') .. ']'
end

-- Notifies the error and remembers its actions; returns the actions' hint for the chat buffer.
function M.show(err, handlers)
  local actions = M.actions(err, handlers or {})
  M.last = { message = err.message, actions = actions }
  local text = ('Switchboard: %s%s'):format(err.message or 'unknown error', hint(actions))
  vim.notify(text, vim.log.levels.ERROR, { title = 'Switchboard' })
  return hint(actions)
end

-- Runs the last error's action: the only one at once, else through vim.ui.select.
function M.run_action()
  local last = M.last
  if not last or #last.actions == 0 then
    vim.notify('Switchboard: no action to take.', vim.log.levels.INFO)
    return
  end
  M.last = nil
  if #last.actions == 1 then
    last.actions[1].run()
    return
  end
  vim.ui.select(last.actions, {
    prompt = last.message,
    format_item = function(a)
      return a.label
    end,
  }, function(choice)
    if choice then
      choice.run()
    end
  end)
end

return M
