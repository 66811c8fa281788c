-- Open the chat, send: the answer streams in under the model's heading, with the route reason and
-- the credits under it; the statusline follows the charge.
return {
  run = function(T)
    vim.cmd('edit main.py')
    T.eq(require('switchboard').statusline(), '', 'statusline before the server reported')
    vim.cmd('Switchboard chat')
    local chat = T.wait(T.chat, 'the chat buffer')
    T.eq(vim.bo[chat.buf].filetype, 'switchboard', 'filetype')
    T.eq(vim.fn.winnr('$'), 2, 'windows after :Switchboard chat (a vertical split)')
    T.ok(vim.api.nvim_win_get_width(chat:window()) < vim.o.columns, 'a vertical split, not the whole screen')
    T.wait_ready()
    T.eq(require('switchboard').statusline(), 'Auto · 50 cr', 'statusline before any charge')
    chat = T.send('Say hi [[fake:slow=0.03 words=60]]')
    -- Streaming: some text shows before the answer is complete.
    T.wait(function()
      return T.text(chat.buf):find('Simulated reply from', 1, true) and chat.busy
    end, 'streamed text while the answer is still running')
    T.wait_idle(chat)
    local text = T.text(chat.buf)
    T.contains(text, '## You\nSay hi [[fake:slow=0.03 words=60]]', 'the user turn')
    local result = chat.last_result
    local name = require('switchboard.status').model_name(result.routedModel)
    T.ok(name:find('^Claude '), 'the model name, not its id: ' .. name)
    T.contains(text, '## ' .. name .. '\nSimulated reply from ', 'answer heading and text')
    T.contains(text, result.text, 'the whole answer')
    local credits = require('switchboard.status').format_credits(result.credits)
    T.ok(result.credits > 0, 'the answer was charged')
    -- own key: the answer's cost at list price ends the footer
    T.ok(type(result.costUsd) == 'number' and result.costUsd > 0, 'a list price for the answer')
    T.contains(text, ('*%s · %s · %s credits · $'):format(name, result.routeReason, credits), 'footer')
    local lines = T.lines(chat.buf)
    T.eq(vim.api.nvim_win_get_cursor(chat:window())[1], #lines, 'the cursor stayed in the prompt area')
    T.eq(vim.fn.line('w$', chat:window()), #lines, 'the window shows the end')
    T.eq(lines[#lines - 1], '## You', 'the prompt heading is at the bottom')
    T.eq(lines[#lines], '', 'the prompt area is empty again')
    local line = require('switchboard').statusline()
    T.ok(line:match('^Auto · 49%.%d+ cr$'), 'statusline after the charge: ' .. line)
    T.eq(require('switchboard').statusline_hl(), 'SwitchboardStatus', 'highlight under 80%')
    local component = require('switchboard').statusline_component()
    T.eq(component, '%#SwitchboardStatus#' .. line .. '%*', 'plain statusline component')
    vim.o.statusline = "%{%v:lua.require'switchboard'.statusline_component()%}"
    vim.cmd('redrawstatus')
    T.eq(vim.api.nvim_eval_statusline(vim.o.statusline, {}).str, line, 'the rendered statusline')
    T.eq(#T.notes, 0, 'no notifications: ' .. vim.inspect(T.notes))
  end,
}
