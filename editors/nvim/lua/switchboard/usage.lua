-- `:Switchboard usage`: a float with the plan, the credits, a per-model table, the month's days as a
-- bar chart, and the overage state.
local config = require('switchboard.config')
local errors = require('switchboard.errors')
local server = require('switchboard.server')
local status = require('switchboard.status')

local M = {}

local fmt = status.format_credits
local CHART_HEIGHT = 6
local BLOCKS = { '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█' }

local function pad(text, width)
  return text .. string.rep(' ', width - vim.fn.strdisplaywidth(text))
end

local function lpad(text, width)
  return string.rep(' ', width - vim.fn.strdisplaywidth(text)) .. text
end

local function meter(fraction, width)
  local filled = math.min(width, math.floor(fraction * width + 0.5))
  return '[' .. string.rep('█', filled) .. string.rep('░', width - filled) .. ']'
end

function M.overage_line(overage, plan_name)
  if not overage.available then
    return ('Overage: not available on %s'):format(plan_name)
  end
  if not overage.enabled then
    return 'Overage: off (:Switchboard overage on)'
  end
  local budget = 'no budget cap'
  if type(overage.budgetUsd) == 'number' then
    budget = ('$%.2f budget'):format(overage.budgetUsd)
  end
  return ('Overage: on, %s; %s credits used ($%.2f)'):format(budget, fmt(overage.credits), overage.costUsd)
end

function M.model_table(by_model)
  if #by_model == 0 then
    return { 'No charges this month yet.' }
  end
  local lines = { pad('Model', 20) .. pad('Answered by', 20) .. lpad('Turns', 6) .. lpad('Credits', 10) }
  for _, row in ipairs(by_model) do
    table.insert(
      lines,
      pad(status.model_name(row.modelId), 20)
        .. pad(status.model_name(row.routedModel), 20)
        .. lpad(tostring(row.turns), 6)
        .. lpad(fmt(row.credits), 10)
    )
  end
  return lines
end

-- One column per day of the period so far, CHART_HEIGHT rows of eighth blocks, the day numbers below.
function M.bar_chart(daily)
  local top = 0
  for _, day in ipairs(daily) do
    top = math.max(top, day.credits)
  end
  local lines = {}
  for level = CHART_HEIGHT, 1, -1 do
    local cells = {}
    for _, day in ipairs(daily) do
      local height = top > 0 and day.credits / top * CHART_HEIGHT or 0
      local cell = ' '
      if height >= level then
        cell = '█'
      elseif height > level - 1 then
        cell = BLOCKS[math.max(1, math.floor((height - level + 1) * 8 + 0.5))] or '▁'
      end
      table.insert(cells, cell .. ' ')
    end
    local label = level == CHART_HEIGHT and lpad(fmt(top), 7) or string.rep(' ', 7)
    table.insert(lines, label .. ' │' .. table.concat(cells))
  end
  local days = {}
  for i, day in ipairs(daily) do
    local number = tonumber(day.date:sub(9, 10)) or i
    table.insert(days, (number % 5 == 0 or number == 1) and string.format('%-2d', number) or '  ')
  end
  table.insert(lines, string.rep(' ', 7) .. ' └' .. string.rep('──', #daily))
  table.insert(lines, string.rep(' ', 9) .. table.concat(days))
  return lines
end

function M.lines(report)
  local used = report.includedCredits > 0 and report.usedCredits / report.includedCredits or 0
  local account = require('switchboard.account').describe(report)
  local lines = {
    ('Plan: %s'):format(report.planName) .. (account and (' · Switchboard Cloud: ' .. account) or ''),
    report.planReason,
    ('Period: %s to %s (UTC)'):format(report.periodStart:sub(1, 10), report.periodEnd:sub(1, 10)),
    '',
    ('Credits: %s used, %s left of %s  %s %d%%'):format(
      fmt(report.usedCredits),
      fmt(report.remainingCredits),
      fmt(report.includedCredits),
      meter(math.min(1, used), 20),
      math.floor(used * 100 + 0.5)
    ),
    M.overage_line(report.overage, report.planName),
    '',
  }
  vim.list_extend(lines, M.model_table(report.byModel))
  vim.list_extend(lines, { '', 'Credits per day' })
  vim.list_extend(lines, M.bar_chart(report.daily))
  for _, alert in ipairs(report.alerts or {}) do
    table.insert(lines, '! ' .. alert)
  end
  return lines
end

function M.open_float(report)
  local lines = M.lines(report)
  local buf = vim.api.nvim_create_buf(false, true)
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, lines)
  vim.bo[buf].modifiable = false
  vim.bo[buf].bufhidden = 'wipe'
  vim.bo[buf].filetype = 'switchboard_usage'
  local width = 0
  for _, line in ipairs(lines) do
    width = math.max(width, vim.fn.strdisplaywidth(line))
  end
  width = math.min(width + 2, vim.o.columns - 4)
  local height = math.min(#lines, vim.o.lines - 4)
  local win = vim.api.nvim_open_win(buf, true, {
    relative = 'editor',
    width = width,
    height = height,
    row = math.floor((vim.o.lines - height) / 2) - 1,
    col = math.floor((vim.o.columns - width) / 2),
    border = config.options.usage.border,
    title = ' Switchboard usage ',
    title_pos = 'center',
    style = 'minimal',
  })
  local hl = status.highlight()
  if hl ~= 'SwitchboardStatus' then
    vim.api.nvim_buf_set_extmark(buf, vim.api.nvim_create_namespace('switchboard_usage'), 4, 0, {
      end_row = 5,
      hl_group = hl,
    })
  end
  for _, key in ipairs({ 'q', '<Esc>' }) do
    vim.keymap.set('n', key, function()
      if vim.api.nvim_win_is_valid(win) then
        vim.api.nvim_win_close(win, true)
      end
    end, { buffer = buf, nowait = true, desc = 'Switchboard: close usage' })
  end
  return win, buf
end

function M.show(root)
  server.request(root, 'switchboard/usage', vim.empty_dict(), function(err, report)
    if err then
      errors.show(err)
      return
    end
    status.set_usage(report)
    M.open_float(report)
  end)
end

return M
