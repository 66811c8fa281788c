-- chat.layout: 'float' (this run's setup) and 'horizontal'; a bad layout is reported and falls back.
return {
  run = function(T)
    vim.cmd('Switchboard chat')
    local chat = T.wait(T.chat, 'the chat')
    local win = chat:window()
    T.eq(vim.api.nvim_win_get_config(win).relative, 'editor', 'a float')
    T.eq(vim.api.nvim_win_get_width(win), 60, 'width in columns')
    chat:hide()
    T.ok(not chat:window(), 'q/hide closes the window')
    require('switchboard').setup({ chat = { layout = 'horizontal' } })
    vim.cmd('Switchboard chat')
    win = chat:window()
    T.eq(vim.api.nvim_win_get_config(win).relative, '', 'a split')
    T.eq(vim.api.nvim_win_get_width(win), vim.o.columns, 'horizontal: full width')
    require('switchboard').setup({ chat = { layout = 'sideways' } })
    T.wait_notified("chat.layout must be 'vertical', 'horizontal' or 'float'")
    T.eq(require('switchboard.config').options.chat.layout, 'vertical', 'falls back to vertical')

    -- The statusline's highlight levels (what usageChanged would have said).
    local status = require('switchboard.status')
    local function level(used, overage_on)
      status.set_usage({ includedCredits = 50, usedCredits = used, remainingCredits = math.max(0, 50 - used),
        overage = { enabled = overage_on } })
      return require('switchboard').statusline_hl()
    end
    T.eq(level(39.9), 'SwitchboardStatus', 'under 80%')
    T.eq(level(40), 'SwitchboardStatusWarn', 'at 80%')
    T.eq(level(50), 'SwitchboardStatusOver', 'at 100%')
    T.eq(level(55, true), 'SwitchboardStatusWarn', 'past 100% with overage on')
    T.eq(require('switchboard').statusline(), '0 cr', 'credits only, before a model is known')
    local usage = require('switchboard.usage')
    T.eq(usage.overage_line({ available = true, enabled = true, budgetUsd = 20, credits = 1.5, costUsd = 0.06 }, 'Pro'),
      'Overage: on, $20.00 budget; 1.5 credits used ($0.06)', 'overage on, with a budget')
    T.eq(usage.overage_line({ available = true, enabled = true, budgetUsd = vim.NIL, credits = 0, costUsd = 0 }, 'Pro'),
      'Overage: on, no budget cap; 0 credits used ($0.00)', 'overage on, no cap')
    T.eq(usage.overage_line({ available = true, enabled = false }, 'Pro'), 'Overage: off (:Switchboard overage on)',
      'overage off')
    local lualine = require('switchboard').lualine
    T.eq(lualine[1](), '0 cr', 'lualine component text')
    T.eq(lualine.color(), 'SwitchboardStatusWarn', 'lualine component highlight')
  end,
}
