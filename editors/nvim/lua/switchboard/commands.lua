-- :Switchboard {subcommand} [args]
local M = {}

local function root()
  return require('switchboard.server').root(0)
end

local function chat_of_root()
  return require('switchboard.chat').get(root())
end

local function overage(args)
  local state = args[1]
  if state ~= 'on' and state ~= 'off' then
    vim.notify('Switchboard: :Switchboard overage on [budget in USD] | off', vim.log.levels.WARN)
    return
  end
  local params = { enabled = state == 'on' }
  if args[2] then
    params.budgetUsd = tonumber(args[2])
  end
  require('switchboard.server').request(root(), 'switchboard/setOverage', params, function(err, report)
    if err then
      require('switchboard.errors').show(err)
      return
    end
    require('switchboard.status').set_usage(report)
    vim.notify('Switchboard: ' .. require('switchboard.usage').overage_line(report.overage, report.planName))
  end)
end

M.subcommands = {
  chat = function(_, opts)
    require('switchboard.chat').open(opts)
  end,
  model = function(args)
    if args[1] then
      require('switchboard.models').select(root(), args[1])
    else
      require('switchboard.models').pick(root())
    end
  end,
  history = function()
    require('switchboard.history').pick(root())
  end,
  new = function()
    local chat = require('switchboard.chat').open({})
    chat:new()
  end,
  usage = function()
    require('switchboard.usage').show(root())
  end,
  retry = function(args)
    chat_of_root():retry(args[1])
  end,
  stop = function()
    chat_of_root():stop()
  end,
  action = function()
    require('switchboard.errors').run_action()
  end,
  detach = function()
    local chat = chat_of_root()
    chat.pending_context = {}
    chat:show_pending_context()
    chat:schedule_estimate()
  end,
  think = function(args)
    local value = args[1]
    if value == 'off' then
      chat_of_root():set_thinking(nil)
      return
    end
    local budget = tonumber(value or '8000')
    if not budget then
      vim.notify('Switchboard: :Switchboard think [budget tokens, 1024-62976] | off', vim.log.levels.WARN)
      return
    end
    chat_of_root():set_thinking(math.floor(budget))
  end,
  overage = overage,
  -- no argument: the device flow against the gateway; a token: an entitlement (development, offline)
  signin = function(args)
    require('switchboard.account').signin(root(), args[1])
  end,
  signout = function()
    require('switchboard.account').signout(root())
  end,
}

function M.run(opts)
  local args = vim.deepcopy(opts.fargs)
  local name = table.remove(args, 1) or 'chat'
  local fn = M.subcommands[name]
  if not fn then
    vim.notify(
      ('Switchboard: unknown command %q. Use one of: %s'):format(name, table.concat(M.names(), ', ')),
      vim.log.levels.ERROR
    )
    return
  end
  fn(args, { range = opts.range > 0, line1 = opts.line1, line2 = opts.line2 })
end

function M.names()
  local names = vim.tbl_keys(M.subcommands)
  table.sort(names)
  return names
end

function M.complete(arg_lead, cmdline)
  local words = vim.split(cmdline, '%s+', { trimempty = true })
  local completing_first = #words == 1 or (#words == 2 and arg_lead ~= '')
  if completing_first then
    return vim.tbl_filter(function(n)
      return n:find(arg_lead, 1, true) == 1
    end, M.names())
  end
  if words[2] == 'model' then
    local ids = { 'auto', 'claude-haiku-4.5', 'claude-sonnet-4.0', 'claude-sonnet-4.5', 'claude-opus-4.5' }
    return vim.tbl_filter(function(n)
      return n:find(arg_lead, 1, true) == 1
    end, ids)
  end
  if words[2] == 'overage' then
    return { 'on', 'off' }
  end
  if words[2] == 'think' then
    return { '4000', '8000', '16000', 'off' }
  end
  return {}
end

return M
