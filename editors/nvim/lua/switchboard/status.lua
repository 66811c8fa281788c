-- What the server last told us: the usage report (account-wide), and per project root the selected
-- model and the model list. Kept by notifications, so reading it (the statusline) costs nothing.
local M = {}

M.usage = nil ---@type table|nil  the latest UsageReport
local selected = {} ---@type table<string, string>  root -> model id
local models = {} ---@type table<string, table[]>  root -> ModelInfo[]
local names = { auto = 'Auto' } ---@type table<string, string>  model id -> name
local last_root = nil

function M.set_usage(report)
  M.usage = report
  vim.cmd('redrawstatus!')
end

function M.set_selected(root, model_id)
  selected[root] = model_id
  last_root = root
  vim.cmd('redrawstatus!')
end

function M.set_models(root, result)
  models[root] = result.models
  for _, m in ipairs(result.models) do
    names[m.id] = m.name
  end
  M.set_selected(root, result.selected)
end

function M.selected(root)
  return (root and selected[root]) or selected[last_root]
end

function M.models(root)
  return models[root]
end

function M.model_name(id)
  if id == nil or id == vim.NIL then
    return '?'
  end
  return names[id] or id
end

-- "Claude Sonnet 4.5" -> "Sonnet 4.5": short enough for a statusline.
function M.short_name(id)
  return (M.model_name(id):gsub('^Claude ', ''))
end

-- 49.6, 49.97, 50: at most two decimals, no trailing zeros.
function M.format_credits(value)
  local text = string.format('%.2f', value or 0):gsub('0+$', ''):gsub('%.$', '')
  return text
end

function M.fraction_used()
  local u = M.usage
  if not u or not u.includedCredits or u.includedCredits <= 0 then
    return 0
  end
  return u.usedCredits / u.includedCredits
end

function M.statusline(root)
  local u = M.usage
  if not u then
    return ''
  end
  local model = M.selected(root)
  local credits = M.format_credits(u.remainingCredits) .. ' cr'
  -- Signed in to Switchboard Cloud, the figures are the gateway's: the plan says so.
  if type(u.accountInfo) == 'table' and u.accountInfo.mode == 'hosted' then
    credits = credits .. ' (' .. u.planName .. ', cloud)'
  end
  if model == nil then
    return credits
  end
  return M.short_name(model) .. ' · ' .. credits
end

function M.highlight()
  local used = M.fraction_used()
  local overage_on = M.usage and M.usage.overage and M.usage.overage.enabled
  if used >= 1 and not overage_on then
    return 'SwitchboardStatusOver'
  elseif used >= 0.8 then
    return 'SwitchboardStatusWarn'
  end
  return 'SwitchboardStatus'
end

return M
