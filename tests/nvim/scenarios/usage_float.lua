-- :Switchboard usage (gu in the chat): plan, credits used and left, per-model table, days as a bar chart, overage.
return {
  run = function(T)
    vim.cmd('Switchboard chat')
    T.wait_ready()
    local chat = T.send('hi')
    T.wait_idle(chat)
    T.keys('gu')
    local win = T.wait(function()
      return vim.bo.filetype == 'switchboard_usage' and vim.api.nvim_get_current_win()
    end, 'the usage float')
    T.ok(vim.api.nvim_win_get_config(win).relative == 'editor', 'a float')
    local usage = require('switchboard.status').usage
    local text = T.text(0)
    T.contains(text, 'Plan: Free\nNo entitlement: you are on Free', 'the plan and why')
    local fmt = require('switchboard.status').format_credits
    T.contains(text, ('Credits: %s used, %s left of 50'):format(fmt(usage.usedCredits), fmt(usage.remainingCredits)),
      'credits')
    T.contains(text, 'Overage: not available on Free', 'overage')
    local share = chat.last_result.routedModel == 'claude-haiku-4.5' and '0%' or '100%'
    T.contains(text, ('Auto for you: %s Sonnet this month'):format(share), 'Auto for you')
    local routed = require('switchboard.status').model_name(chat.last_result.routedModel)
    T.ok(text:find('Auto%s+' .. vim.pesc(routed) .. '%s+1%s+' .. vim.pesc(fmt(chat.last_result.credits))),
      'the per-model row:\n' .. text)
    T.contains(text, 'Credits per day', 'the chart title')
    local today = tonumber(usage.daily[#usage.daily].date:sub(9, 10))
    local bars = 0
    for _, line in ipairs(T.lines(0)) do
      if line:find('│', 1, true) then
        bars = bars + 1
        local cells = line:match('│(.*)$')
        T.eq(vim.fn.strchars(cells), 2 * #usage.daily, 'one column per day')
        T.ok(vim.fn.strcharpart(cells, 2 * (today - 1), 1) ~= ' ', "today's column has a bar")
      end
    end
    T.eq(bars, 6, 'chart rows')
    T.keys('q')
    T.ok(not vim.api.nvim_win_is_valid(win), 'q closes it')
  end,
}
